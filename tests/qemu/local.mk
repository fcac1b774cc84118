# The library's QEMU profile against QEMU: qemu-reencode reads a capture
# and writes it again through the public reader and writer; the capture
# tests (tests/dump/check-dump-captures.sh) compare, and qemu-interop.sh
# has QEMU load what it writes (skipped without QEMU).
# Included by tests/local.mk.

check_PROGRAMS += tests/qemu/qemu-reencode
tests_qemu_qemu_reencode_SOURCES = tests/qemu/qemu-reencode.c
tests_qemu_qemu_reencode_LDADD = $(LIBMS)

TESTS += tests/qemu/qemu-interop.sh
EXTRA_DIST += tests/qemu/qemu-interop.sh

# ms_ram loads the RAM of every capture; the blocks must equal
# migstream-dump extract's files (check-ram-captures.sh, ram-load.c).
check_PROGRAMS += tests/qemu/ram-load
tests_qemu_ram_load_SOURCES = tests/qemu/ram-load.c $(DUMP_CORE_SOURCES)
tests_qemu_ram_load_CFLAGS = $(DUMP_CFLAGS)
tests_qemu_ram_load_LDADD = $(DUMP_LDADD)
TESTS += tests/qemu/check-ram-captures.sh
EXTRA_DIST += tests/qemu/check-ram-captures.sh
