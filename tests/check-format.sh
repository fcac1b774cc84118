#!/bin/sh
# The C sources follow .clang-format.  Skipped (77) without clang-format.
set -u
src="${top_srcdir:-.}"
cf="${CLANG_FORMAT:-clang-format}"
if [ "$cf" = "no" ] || ! command -v "$cf" >/dev/null 2>&1; then
	echo "clang-format not found: skipped"; exit 77
fi
status=0
for f in $(cd "$src" && ls src/*.c src/*.h include/migstream/*.h examples/*.c bench/*.c tests/*.c tests/*.h tools/*.c tools/*.h tests/fuzz/*.c tests/fuzz/*.h 2>/dev/null); do
	if ! (cd "$src" && "$cf" --dry-run -Werror --style=file "$f" >/dev/null 2>&1); then
		echo "not formatted: $f (run: clang-format -i $f)" >&2
		status=1
	fi
done
exit $status
