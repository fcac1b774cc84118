#!/bin/sh
# The C sources follow .clang-format.  Skipped (77) without clang-format.
# Only source files are checked, not what the build generates
# (include/migstream/version.h, tests/demo/demo-embedding.c), which an in-tree
# build puts beside them: never a file made from a '.in' template or
# listed in $MS_GENERATED (the Makefile's DISTCLEANFILES), and in a git
# checkout only tracked files.
set -u
src="${top_srcdir:-.}"
cf="${CLANG_FORMAT:-clang-format}"
if [ "$cf" = "no" ] || ! command -v "$cf" >/dev/null 2>&1; then
	echo "clang-format not found: skipped"; exit 77
fi
globs="src/*.c src/*.h include/migstream/*.h examples/*.c examples/*.h bench/*.c bench/*.h tools/*.c tools/*.h tests/*/*.c tests/*/*.h"
tracked=""
if [ "$(git -C "$src" rev-parse --show-prefix 2>/dev/null)" = "" ] &&
	git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	tracked=" $(cd "$src" && git ls-files | tr '\n' ' ') "
fi
# shellcheck disable=SC2086
files=$(cd "$src" && ls $globs 2>/dev/null)
status=0 n=0
for f in $files; do
	[ -f "$src/$f" ] || continue
	[ -f "$src/$f.in" ] && continue
	case "$tracked" in "" | *" $f "*) ;; *) continue ;; esac
	case " ${MS_GENERATED:-} " in *" $f "*) continue ;; esac
	n=$((n + 1))
	if ! (cd "$src" && "$cf" --dry-run -Werror --style=file "$f" >/dev/null 2>&1); then
		echo "not formatted: $f (run: clang-format -i $f)" >&2
		status=1
	fi
done
[ $n -gt 0 ] || { echo "no C sources found under $src" >&2; exit 99; }
echo "$n files checked"
exit $status
