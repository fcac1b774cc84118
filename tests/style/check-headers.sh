#!/bin/sh
# Every public header compiles on its own, as C99 -pedantic and as C++.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
cc="${CC:-cc}"
cxx="${CXX:-c++}"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
status=0
for h in "$src"/include/migstream/*.h "$bld"/include/migstream/version.h; do
	[ -f "$h" ] || continue
	name=$(basename "$h")
	printf '#include <migstream/%s>\nint ms_test_dummy(void);\nint ms_test_dummy(void) { return 0; }\n' "$name" > "$tmp/t.c"
	if ! $cc -std=c99 -pedantic -Werror -Wall -Wextra -I"$src/include" -I"$bld/include" \
		-c "$tmp/t.c" -o "$tmp/t.o"; then
		echo "FAIL: $name as C99 -pedantic" >&2; status=1
	fi
	cp "$tmp/t.c" "$tmp/t.cc"
	if ! $cxx -Werror -Wall -Wextra -pedantic -I"$src/include" -I"$bld/include" \
		-c "$tmp/t.cc" -o "$tmp/t.o"; then
		echo "FAIL: $name as C++" >&2; status=1
	fi
	echo "checked $name"
done
exit $status
