# Checks of the sources: global symbols prefixed, headers self-contained,
# kernel-doc on the public functions, the clang-format layout, and the
# README's example program.
# Included by tests/local.mk.

STYLE_TESTS = \
	tests/style/check-symbols.sh \
	tests/style/check-headers.sh \
	tests/style/check-kdoc.sh \
	tests/style/check-format.sh \
	tests/style/check-readme.sh
TESTS += $(STYLE_TESTS)
EXTRA_DIST += $(STYLE_TESTS)
