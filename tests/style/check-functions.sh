#!/bin/sh
# No function of the library (src/*.c) is longer than 100 lines, from the
# opening brace in column 0 to the closing one (the layout clang-format
# keeps): a longer one mixes what one function per record type, state or
# object keeps apart.  Prints the longest function of all.
set -u
src="${top_srcdir:-.}/src"
max=100
ls "$src"/*.c >/dev/null 2>&1 || { echo "no sources in $src" >&2; exit 99; }
# shellcheck disable=SC2016
out=$(awk -v max=$max '
	FNR == 1 { start = 0 }
	/^\{/ { start = FNR; name = prev }
	/^\}/ && start {
		n = FNR - start + 1
		if (n > longest) { longest = n; where = FILENAME ": " name }
		if (n > max) { print "too long (" n " lines): " FILENAME ": " name; bad = 1 }
		start = 0
	}
	{ prev = $0 }
	END {
		print "longest: " longest " lines, " where
		exit bad
	}' "$src"/*.c)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "functions over $max lines in src/" >&2; exit 1; }
