# Fuzz targets.  With --enable-fuzzing they are libFuzzer programs (run
# them by hand: tests/fuzz/fuzz_qemu_reader CORPUS_DIR); otherwise they
# link a replay main() (tests/fuzz/replay.c) and 'make check' runs them
# over the seed corpus (tests/fuzz/check-replay.sh).
# Included by tests/local.mk.

# The library's readers and its loader fed a stream.
FUZZ_TARGETS = \
	tests/fuzz/fuzz_qemu_reader \
	tests/fuzz/fuzz_native_reader \
	tests/fuzz/fuzz_load_feed
FUZZ_LIB_SOURCES = tests/fuzz/fuzz-common.h
FUZZ_LIB_TARGET_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
tests_fuzz_fuzz_qemu_reader_SOURCES = tests/fuzz/fuzz_qemu_reader.c \
	$(FUZZ_LIB_SOURCES)
tests_fuzz_fuzz_native_reader_SOURCES = tests/fuzz/fuzz_native_reader.c \
	$(FUZZ_LIB_SOURCES)
tests_fuzz_fuzz_load_feed_SOURCES = tests/fuzz/fuzz_load_feed.c \
	$(FUZZ_LIB_SOURCES)
tests_fuzz_fuzz_qemu_reader_CFLAGS = $(FUZZ_LIB_TARGET_CFLAGS)
tests_fuzz_fuzz_native_reader_CFLAGS = $(FUZZ_LIB_TARGET_CFLAGS)
tests_fuzz_fuzz_load_feed_CFLAGS = $(FUZZ_LIB_TARGET_CFLAGS)
tests_fuzz_fuzz_qemu_reader_LDADD = $(LIBMS)
tests_fuzz_fuzz_native_reader_LDADD = $(LIBMS)
tests_fuzz_fuzz_load_feed_LDADD = $(LIBMS)

# The dump tool's walker, and its commands: state with its VM
# description, convert both ways (its output must walk to the input's
# records), extract into a temporary directory.
FUZZ_TARGETS += \
	tests/fuzz/fuzz_dump_walk \
	tests/fuzz/fuzz_dump_state \
	tests/fuzz/fuzz_dump_convert \
	tests/fuzz/fuzz_dump_extract
FUZZ_DUMP_SOURCES = tests/fuzz/fuzz-dump.h tests/fuzz/fuzz-common.h \
	$(DUMP_CORE_SOURCES)
tests_fuzz_fuzz_dump_walk_SOURCES = tests/fuzz/fuzz_dump_walk.c \
	$(DUMP_CORE_SOURCES)
tests_fuzz_fuzz_dump_state_SOURCES = tests/fuzz/fuzz_dump_state.c \
	$(FUZZ_DUMP_SOURCES)
tests_fuzz_fuzz_dump_convert_SOURCES = tests/fuzz/fuzz_dump_convert.c \
	tools/dump-convert.c $(FUZZ_DUMP_SOURCES)
tests_fuzz_fuzz_dump_extract_SOURCES = tests/fuzz/fuzz_dump_extract.c \
	tools/dump-extract.c $(FUZZ_DUMP_SOURCES)
tests_fuzz_fuzz_dump_walk_CFLAGS = $(DUMP_CFLAGS)
tests_fuzz_fuzz_dump_state_CFLAGS = $(DUMP_CFLAGS)
tests_fuzz_fuzz_dump_convert_CFLAGS = $(DUMP_CFLAGS)
tests_fuzz_fuzz_dump_extract_CFLAGS = $(DUMP_CFLAGS)
tests_fuzz_fuzz_dump_walk_LDADD = $(DUMP_LDADD)
tests_fuzz_fuzz_dump_state_LDADD = $(DUMP_LDADD)
tests_fuzz_fuzz_dump_convert_LDADD = $(DUMP_LDADD)
tests_fuzz_fuzz_dump_extract_LDADD = $(DUMP_LDADD)

if ENABLE_FUZZING
noinst_PROGRAMS += $(FUZZ_TARGETS)
tests_fuzz_fuzz_qemu_reader_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_native_reader_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_load_feed_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_dump_walk_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_dump_state_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_dump_convert_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_dump_extract_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
else
check_PROGRAMS += $(FUZZ_TARGETS)
tests_fuzz_fuzz_qemu_reader_SOURCES += tests/fuzz/replay.c
tests_fuzz_fuzz_native_reader_SOURCES += tests/fuzz/replay.c
tests_fuzz_fuzz_load_feed_SOURCES += tests/fuzz/replay.c
tests_fuzz_fuzz_dump_walk_SOURCES += tests/fuzz/replay.c
tests_fuzz_fuzz_dump_state_SOURCES += tests/fuzz/replay.c
tests_fuzz_fuzz_dump_convert_SOURCES += tests/fuzz/replay.c
tests_fuzz_fuzz_dump_extract_SOURCES += tests/fuzz/replay.c
TESTS += tests/fuzz/check-replay.sh
endif
EXTRA_DIST += \
	tests/fuzz/check-replay.sh \
	tests/fuzz/make-seeds.c \
	tests/fuzz/corpus
