# The dump tool: its commands on the test data (script tests), damaged
# captures walked in-process, its verdicts against the library's loader,
# its memory bound and its caps.
# Included by tests/local.mk.

DUMP_TESTS = \
	tests/dump/check-dump.sh \
	tests/dump/check-invalid.sh \
	tests/dump/check-extract.sh \
	tests/dump/check-convert.sh \
	tests/dump/check-dump-captures.sh \
	tests/dump/check-dump-rss.sh \
	tests/dump/check-state-limits.sh \
	tests/dump/check-verdicts.sh \
	tests/dump/check-dump-options.sh \
	tests/dump/check-mapped.sh \
	tests/dump/check-mapped-lib.sh
TESTS += $(DUMP_TESTS)
EXTRA_DIST += $(DUMP_TESTS)

# The convert command's record summaries (SipHash-2-4) against the
# reference vectors.
check_PROGRAMS += tests/dump/check-convert-hash
TESTS += tests/dump/check-convert-hash
tests_dump_check_convert_hash_SOURCES = tests/dump/check-convert-hash.c \
	$(DUMP_CORE_SOURCES)
tests_dump_check_convert_hash_CFLAGS = $(DUMP_CFLAGS)
tests_dump_check_convert_hash_LDADD = $(DUMP_LDADD)

# Truncation at every offset and bit flips over the captures, in-process
# through the walker (tools/dump-walk.c), as the fuzz target does.
check_PROGRAMS += tests/dump/check_dump_damage
TESTS += tests/dump/check_dump_damage
tests_dump_check_dump_damage_SOURCES = tests/dump/check_dump_damage.c \
	$(DUMP_CORE_SOURCES)
tests_dump_check_dump_damage_CFLAGS = $(DUMP_CFLAGS)
tests_dump_check_dump_damage_LDADD = $(DUMP_LDADD)

# dump-rss: generates a large page-heavy stream into a pipe to
# migstream-dump and reports the child's peak RSS (check-dump-rss.sh).
check_PROGRAMS += tests/dump/dump-rss
tests_dump_dump_rss_SOURCES = tests/dump/dump-rss.c
tests_dump_dump_rss_LDADD = $(LIBMS)

# The differential test: migstream-dump verify and ms_load_run() give
# every test input the same verdict (check-verdicts.sh).
check_PROGRAMS += tests/dump/load-verdict
tests_dump_load_verdict_SOURCES = tests/dump/load-verdict.c \
	$(DUMP_CORE_SOURCES)
tests_dump_load_verdict_CFLAGS = $(DUMP_CFLAGS)
tests_dump_load_verdict_LDADD = $(DUMP_LDADD)

# The generator of the state and no-footer cases under tests/data/invalid/.
EXTRA_DIST += tests/dump/gen-state-cases.py

# The library's side of the mapped files' differential test: a mapped
# save, a streaming save and a mapped restore (check-mapped-lib.sh).
check_PROGRAMS += tests/dump/mapped-lib
tests_dump_mapped_lib_SOURCES = tests/dump/mapped-lib.c
tests_dump_mapped_lib_LDADD = $(LIBMS)
