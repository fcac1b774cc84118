#!/bin/sh
# The README's example compiles against the library, runs, and prints what
# the README says it prints.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
cc="${CC:-cc}"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
awk '/^```c$/ { on = 1; next } /^```$/ { on = 0 } on' "$src/README" >"$tmp/example.c"
[ -s "$tmp/example.c" ] || { echo "no C example in README" >&2; exit 1; }
# shellcheck disable=SC2086
$cc -std=c99 -Wall -Wextra -Werror -I"$src/include" -I"$bld/include" \
	$SAN_FLAGS -o "$tmp/example" "$tmp/example.c" "$bld/src/libmigstream.a" \
	$ZLIB_LIBS || exit 1
ex="$tmp/example"
. "$src/tests/lib/run-wrap.sh" && ms_wrap ex
"$ex" >"$tmp/out" || { echo "example exited non-zero" >&2; exit 1; }
want=$(tr '\n' ' ' <"$src/README" | sed -n 's/.*It prints `\([^`]*\)`.*/\1/p' | tr -s ' ')
got=$(tr -s ' ' <"$tmp/out")
if [ "$got" != "$want" ]; then
	echo "README says it prints: $want" >&2
	echo "it printed:            $got" >&2
	exit 1
fi
echo "ok: $got"
