# Checks of the sources: global symbols prefixed, headers self-contained,
# kernel-doc on the public functions, the clang-format layout, the
# README's example program, and no function of src/ over 100 lines.
# Included by tests/local.mk.

STYLE_TESTS = \
	tests/style/check-symbols.sh \
	tests/style/check-headers.sh \
	tests/style/check-kdoc.sh \
	tests/style/check-format.sh \
	tests/style/check-readme.sh \
	tests/style/check-functions.sh
TESTS += $(STYLE_TESTS)
EXTRA_DIST += $(STYLE_TESTS)
