# Check programs against the library (skipped without Check), and the
# comparison of our vfio-user declarations with <libvfio-user.h>.
# Included by tests/local.mk.

if HAVE_CHECK
UNIT_TESTS = \
	tests/unit/check_stream \
	tests/unit/check_sinks \
	tests/unit/check_faults \
	tests/unit/check_codec \
	tests/unit/check_driver \
	tests/unit/check_qemu_samples \
	tests/unit/check_vfio_user \
	tests/unit/check_ram \
	tests/unit/check_ram_channels \
	tests/unit/check_ram_mapped
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/tests/lib
UNIT_LDADD = $(LIBMS) $(CHECK_LIBS)

tests_unit_check_stream_SOURCES = tests/unit/check_stream.c tests/lib/ms-test.h
tests_unit_check_stream_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_stream_LDADD = $(UNIT_LDADD)

tests_unit_check_sinks_SOURCES = tests/unit/check_sinks.c tests/lib/ms-test.h
tests_unit_check_sinks_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_sinks_LDADD = $(UNIT_LDADD)

tests_unit_check_faults_SOURCES = tests/unit/check_faults.c tests/lib/ms-test.h
tests_unit_check_faults_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_faults_LDADD = $(UNIT_LDADD)

tests_unit_check_codec_SOURCES = tests/unit/check_codec.c tests/lib/ms-test.h
tests_unit_check_codec_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_codec_LDADD = $(UNIT_LDADD)

tests_unit_check_driver_SOURCES = tests/unit/check_driver.c tests/lib/ms-test.h
tests_unit_check_driver_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_driver_LDADD = $(UNIT_LDADD)

tests_unit_check_qemu_samples_SOURCES = tests/unit/check_qemu_samples.c \
	tests/lib/ms-test.h
tests_unit_check_qemu_samples_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_qemu_samples_LDADD = $(UNIT_LDADD)

tests_unit_check_ram_channels_SOURCES = tests/unit/check_ram_channels.c \
	tests/lib/ms-test.h
tests_unit_check_ram_channels_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_ram_channels_LDADD = $(UNIT_LDADD)

tests_unit_check_vfio_user_SOURCES = tests/unit/check_vfio_user.c \
	tests/lib/ms-test.h \
	tests/lib/vfu-client.c \
	tests/lib/vfu-client.h \
	tests/lib/mock/libvfio-user.h
tests_unit_check_vfio_user_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_vfio_user_LDADD = $(UNIT_LDADD)

tests_unit_check_ram_mapped_SOURCES = tests/unit/check_ram_mapped.c \
	tests/lib/ms-test.h
tests_unit_check_ram_mapped_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_ram_mapped_LDADD = $(UNIT_LDADD)

tests_unit_check_ram_SOURCES = tests/unit/check_ram.c tests/lib/ms-test.h
tests_unit_check_ram_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_ram_LDADD = $(UNIT_LDADD)
endif

# With <libvfio-user.h> around, check that our declarations match it.
if HAVE_LIBVFIO_USER
check_PROGRAMS += tests/unit/check-vfu-types
TESTS += tests/unit/check-vfu-types
endif
tests_unit_check_vfu_types_SOURCES = tests/unit/check-vfu-types.c
tests_unit_check_vfu_types_CPPFLAGS = $(AM_CPPFLAGS) $(LIBVFIO_USER_CFLAGS)
