# The test suite: 'make check'.  One folder per kind of test, each with
# its own fragment:
#   tests/style/  checks of the sources (symbols, headers, kernel-doc,
#                 layout, the README's example)
#   tests/unit/   Check programs against the library
#   tests/dump/   the dump tool: script tests, damage, verdicts, limits
#   tests/qemu/   the library's QEMU profile against QEMU captures and QEMU
#   tests/demo/   the end-to-end demo and docs/EMBEDDING.md
#   tests/fuzz/   fuzz targets (their seed corpus is replayed here)
#   tests/lib/    what the tests share (ms-test.h, the vfio-user drivers,
#                 run-wrap.sh, dump-test-lib.sh, a mock libvfio-user.h)
#   tests/data/   golden vectors, invalid inputs, QEMU captures
# Included by the top Makefile.am.

TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(top_srcdir)'; top_builddir='$(top_builddir)'; \
	NM='$(NM)'; CC='$(CC)'; CXX='$(CXX)'; CLANG_FORMAT='$(CLANG_FORMAT)'; \
	SAN_FLAGS='$(SAN_CFLAGS) $(COV_CFLAGS)'; ZLIB_LIBS='$(ZLIB_LIBS)'; \
	export top_srcdir top_builddir NM CC CXX CLANG_FORMAT SAN_FLAGS ZLIB_LIBS;
# check-format.sh leaves out the sources that an in-tree build generates.
AM_TESTS_ENVIRONMENT += MS_GENERATED='$(DISTCLEANFILES)'; export MS_GENERATED;

# The script tests run built programs through run-wrap.sh (cross runs:
# qemu-user); the dump tool's share dump-test-lib.sh.
EXTRA_DIST += \
	tests/lib/run-wrap.sh \
	tests/lib/dump-test-lib.sh \
	tests/data

include $(srcdir)/tests/style/local.mk
include $(srcdir)/tests/unit/local.mk
include $(srcdir)/tests/dump/local.mk
include $(srcdir)/tests/qemu/local.mk
include $(srcdir)/tests/demo/local.mk
include $(srcdir)/tests/fuzz/local.mk
