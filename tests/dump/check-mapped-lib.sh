#!/bin/sh
# The differential test of mapped snapshot files: the library
# (ms_ram_mapped_*, through tests/dump/mapped-lib) and migstream-dump's own
# reader and writer (tools/dump-mapped.c) agree.  A file the library saves
# is verified by the tool and converts to a stream and back byte-exact; a
# stream the library saves, converted by the tool --to mapped, restores
# with ms_ram_mapped_restore() in both modes to the saved RAM; and on
# hostile files made from the library's file, the tool's verify and the
# library's read-mode restore give the same verdict.
set -u
. "${top_srcdir:-.}/tests/lib/dump-test-lib.sh"
lib="$bld/tests/dump/mapped-lib"
[ -x "$lib" ] || { echo "$lib not built" >&2; exit 99; }
# Cross runs: the helper is the target's binary too.
ms_wrap lib

"$lib" save-mapped "$tmp/lib.map" || { ko "mapped-lib save-mapped: exit $?"; exit 1; }
run verify "$tmp/lib.map"
[ $rc -eq 0 ] || ko "verify of the library's mapped file: exit $rc: $(cat "$tmp/err")"
for mode in mmap read; do
	"$lib" restore "$tmp/lib.map" $mode 2>"$tmp/err" ||
		ko "the library's own file, $mode restore: $(cat "$tmp/err")"
done
run convert --to native "$tmp/lib.map" "$tmp/lib.nat"
[ $rc -eq 0 ] || ko "convert the library's file --to native: exit $rc: $(cat "$tmp/err")"
run convert --to mapped "$tmp/lib.nat" "$tmp/lib.rt"
[ $rc -eq 0 ] || ko "convert back --to mapped: exit $rc: $(cat "$tmp/err")"
cmp -s "$tmp/lib.map" "$tmp/lib.rt" ||
	ko "the library's mapped file -> native -> the tool's mapped file is not byte-exact"

"$lib" save-stream "$tmp/lib.msn" || { ko "mapped-lib save-stream: exit $?"; exit 1; }
run convert --to mapped "$tmp/lib.msn" "$tmp/tool.map"
[ $rc -eq 0 ] || ko "convert the library's stream --to mapped: exit $rc: $(cat "$tmp/err")"
for mode in mmap read; do
	"$lib" restore "$tmp/tool.map" $mode 2>"$tmp/err" ||
		ko "the tool's mapped file, $mode restore: exit $?: $(cat "$tmp/err")"
done

# Hostile files from the library's file: the same verdict from both.
python3 - "$tmp/lib.map" "$tmp/h" <<'PYEOF' || exit 99
import os, struct, sys, zlib
src, hd = sys.argv[1:3]
os.mkdir(hd)
b0 = open(src, "rb").read()
be32 = lambda b, o: struct.unpack_from(">I", b, o)[0]
be64 = lambda b, o: struct.unpack_from(">Q", b, o)[0]
n, D, L, P = be32(b0, 20), be64(b0, 32), be64(b0, 40), be32(b0, 16)
ents = [4096 + 512 * i for i in range(n)]
def fixh(b):
    struct.pack_into(">I", b, 56, zlib.crc32(bytes(b[4096:4096 + 512 * be32(b, 20)])))
    struct.pack_into(">I", b, 60, zlib.crc32(bytes(b[:60])))
def put(name, b):
    open(os.path.join(hd, name), "wb").write(bytes(b))
cuts = {12, 100, 4096, 4096 + 512 * n, D - 1, D, D + 10, D + L - 1}
for e in ents:
    cuts |= {be64(b0, e + 264), be64(b0, e + 272), be64(b0, e + 280), be64(b0, e + 280) + 5}
for c in cuts:
    put("cut-%x" % c, b0[:c])
def mut(name, fn):
    b = bytearray(b0)
    fn(b)
    put(name, b)
def flip(o):
    return lambda b: b.__setitem__(o, b[o] ^ 4)
mut("complete", flip(15))
mut("header", flip(18))
mut("table", flip(ents[0] + 260))
mut("tail", lambda b: (b.__setitem__(100, 1), fixh(b)))
mut("nblocks", lambda b: (struct.pack_into(">I", b, 20, 1025), fixh(b)))
mut("used-2^63", lambda b: (struct.pack_into(">Q", b, ents[0] + 256, 1 << 63), fixh(b)))
mut("overlap", lambda b: (struct.pack_into(">Q", b, ents[1] + 264, be64(b, ents[0] + 280)), fixh(b)))
mut("D", lambda b: (struct.pack_into(">Q", b, 32, D + 4096), fixh(b)))
for i, e in enumerate(ents):
    bm, cr, pg = be64(b0, e + 264), be64(b0, e + 272), be64(b0, e + 280)
    mut("bitmap-%d" % i, flip(bm))
    mut("crc-%d" % i, flip(cr + 1))
    # The first page with data (its checksum is not the zero page's).
    z = zlib.crc32(bytes(P))
    k = next(j for j in range(be64(b0, e + 256) // P) if be32(b0, cr + 4 * j) != z)
    mut("page-%d" % i, flip(pg + k * P + 9))
for o in (D + 3, D + L // 2, D + L - 2):
    mut("dev-%x" % (o - D), flip(o))
PYEOF
for f in "$tmp"/h/*; do
	run verify "$f"
	t=$rc
	"$lib" restore "$f" read 2>"$tmp/lerr"
	l=$?
	[ $l -le 1 ] || ko "${f##*/}: read restore: exit $l: $(cat "$tmp/lerr")"
	[ $t -le 1 ] || ko "${f##*/}: verify: exit $t"
	[ $t -eq $l ] || ko "${f##*/}: verify exit $t ($(cat "$tmp/err")), the library's read restore exit $l ($(cat "$tmp/lerr"))"
	[ $t -eq 1 ] || ko "${f##*/}: accepted by verify"
	# A damaged page: both name its file offset.
	case ${f##*/} in page-*)
		a=$(grep -o 'offset 0x[0-9a-f]*' "$tmp/err" | head -1)
		b=$(grep -o 'offset 0x[0-9a-f]*' "$tmp/lerr" | head -1)
		[ -n "$a" ] && [ "$a" = "$b" ] ||
			ko "${f##*/}: verify names '$a', the library '$b'"
	esac
done

echo "$(ls "$tmp"/h | wc -l) hostile files, one verdict each"
exit $fail
