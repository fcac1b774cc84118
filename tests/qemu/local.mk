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
