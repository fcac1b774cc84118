#!/bin/sh
# ms_ram loads the RAM section of every QEMU 7.2 capture in
# tests/data/qemu/ into blocks named and sized from the capture's own
# block list, and every block must equal what "migstream-dump extract"
# writes for that capture (tests/qemu/ram-load.c says how).  pc-compress
# has COMPRESS_PAGE records, which ms_ram refuses naming the flag.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
rl="$bld/tests/qemu/ram-load"
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
[ -x "$rl" ] || { echo "$rl not built" >&2; exit 99; }
. "$src/tests/lib/run-wrap.sh" && ms_wrap dump rl
ms_sanitizer_exit
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
for f in "$src"/tests/data/qemu/*.mig.gz; do
	name=$(basename "$f" .mig.gz)
	gzip -dc "$f" >"$tmp/$name.mig" || { echo "FAIL: gunzip $f" >&2; exit 99; }
	if ! "$dump" extract "$tmp/$name.d" "$tmp/$name.mig" 2>"$tmp/err"; then
		echo "FAIL: $name: migstream-dump extract: $(cat "$tmp/err")" >&2
		fail=1
		continue
	fi
	case $name in
	*compress*) set -- --refused "COMPRESS_PAGE (0x100)" ;;
	*) set -- ;;
	esac
	if "$rl" "$@" "$tmp/$name.mig" "$tmp/$name.d"; then
		n=$((n + 1))
	else
		echo "FAIL: $name: ms_ram's load differs (status $?)" >&2
		fail=1
	fi
	rm -rf "$tmp/$name.d" "$tmp/$name.mig"
done
echo "$n captures loaded by ms_ram"
[ $n -ge 10 ] || { echo "FAIL: only $n captures" >&2; fail=1; }
exit $fail
