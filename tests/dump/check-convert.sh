#!/bin/sh
# migstream-dump convert is true or refused: a native payload that QEMU's
# grammar would read as a footer and another record head is refused (not
# written as a stream that reads back as other sections), and on many
# random native streams (tests/data/gen/convert_random.py, with a naive
# QEMU writer for an oracle) the converter succeeds exactly when the
# conversion reads back, byte for byte.  MS_CONVERT_RANDOM streams (300).
set -u
. "${top_srcdir:-.}/tests/lib/dump-test-lib.sh"

# One FULL whose payload holds "7e <id>" and a FULL head: refused, to a
# file and to standard output, leaving nothing behind.
for kind in phantom phantom3; do
	python3 "$gen/nativestream.py" "$tmp/$kind.msn" $kind || exit 99
	run verify "$tmp/$kind.msn"
	[ $rc -eq 0 ] || ko "$kind: the native input does not verify: $(cat "$tmp/err")"
	run convert --to qemu "$tmp/$kind.msn" "$tmp/$kind.q"
	[ $rc -eq 1 ] || ko "convert $kind: exit $rc, 1 expected"
	grep -q "offset 0x2c: FULL of section 5 (record 2, [0-9]* payload bytes) does not convert to qemu: the output reads back as FULL of section 5 with 2 payload bytes at its offset 0x11 .*; refused" "$tmp/err" ||
		ko "convert $kind: $(cat "$tmp/err")"
	ls "$tmp/$kind.q"* >/dev/null 2>&1 && ko "convert $kind: output left behind"
	run convert --to qemu "$tmp/$kind.msn" -
	[ $rc -eq 1 ] || ko "convert $kind to stdout: exit $rc, 1 expected"
	[ -s "$tmp/out" ] && ko "convert $kind to stdout: $(wc -c <"$tmp/out") bytes written"
done

# Random payloads: both outcomes, each checked against the oracle.
python3 "$gen/convert_random.py" "$dump" "$tmp" "${MS_CONVERT_RANDOM:-300}" ||
	ko "convert of random native streams"
exit $fail
