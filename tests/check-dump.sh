#!/bin/sh
# migstream-dump on the QEMU 7.2 captures and the golden vectors: info
# --json against known figures, sections against an expected listing,
# verify, damaged copies (truncated, bit-flipped) failing cleanly with an
# offset, and the exit statuses of usage and I/O errors.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
data="$src/tests/data"
command -v python3 >/dev/null 2>&1 || { echo "no python3: skipped"; exit 77; }
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
# Under sanitizers a finding must not pass for a stream error (status 1).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=134"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=134"
LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=134"
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

# Run the tool; $rc gets its status, $tmp/out and $tmp/err its output.
run() {
	"$dump" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -gt 3 ] || grep -q 'Sanitizer\|runtime error' "$tmp/err"; then
		ko "migstream-dump $* exited $rc: $(cat "$tmp/err")"
	fi
}

# A stream error: status 1, one "migstream-dump: FILE: offset 0x" line.
expect_invalid() {
	what=$1
	shift
	run "$@"
	if [ $rc -ne 1 ]; then
		ko "$what: exit $rc, 1 expected"
	elif ! grep -q '^migstream-dump: .*: offset 0x[0-9a-f]*: ' "$tmp/err"; then
		ko "$what: no 'offset 0x' message: $(cat "$tmp/err")"
	fi
}

gzip -dc "$data/qemu/pc-min.mig.gz" >"$tmp/pc-min.mig" || exit 99
gzip -dc "$data/qemu/q35-dev.mig.gz" >"$tmp/q35-dev.mig" || exit 99

# info --json: python3 checks "KEY=VALUE" pairs (dotted paths; "#KEY"
# for a length, "#" for the document's) against it.
check_json() {
	file=$1
	shift
	python3 - "$tmp/out" "$file" "$@" <<'EOF' || ko "info --json $file"
import json, sys
doc = json.load(open(sys.argv[1]))
sys.argv.pop(1)
bad = 0
for arg in sys.argv[2:]:
    key, want = arg.split("=", 1)
    v = doc
    for k in key.lstrip("#").split(".") if key != "#" else []:
        v = v[k]
    if key.startswith("#"):
        v = len(v)
    if json.dumps(v, sort_keys=True) != want and str(v) != want:
        print("%s: %s is %s, %s expected" % (sys.argv[1], key,
              json.dumps(v), want), file=sys.stderr)
        bad = 1
sys.exit(bad)
EOF
}

# The two captures.
run info --json "$tmp/pc-min.mig"
[ $rc -eq 0 ] || ko "info pc-min: exit $rc: $(cat "$tmp/err")"
check_json pc-min profile=qemu version=3 machine=pc-i440fx-7.2 \
	section_types.FULL=30 section_types.START=1 section_types.PART=1 \
	section_types.END=1 section_types.FOOTER=33 \
	section_types.CONFIGURATION=1 section_types.COMMAND=0 \
	section_types.SUBSECTION=0 section_types.EOF=1 section_types.VMDESC=1 \
	ram.pages.normal=49 ram.pages.zero=4177 ram.pages.compressed=0 \
	ram.pages.xbzrle=0 ram.total=17309696 \
	'ram.blocks={"/rom@etc/acpi/rsdp": 4096, "/rom@etc/acpi/tables": 131072, "/rom@etc/table-loader": 4096, "pc.bios": 262144, "pc.ram": 16777216, "pc.rom": 131072}' \
	vmdesc=98649 complete=True '#ram.blocks=6'

run info --json "$tmp/q35-dev.mig"
[ $rc -eq 0 ] || ko "info q35-dev: exit $rc: $(cat "$tmp/err")"
check_json q35-dev profile=qemu machine=pc-q35-7.2 section_types.FULL=37 \
	section_types.FOOTER=40 ram.pages.normal=244 ram.pages.zero=20574 \
	ram.total=85270528 vmdesc=55949 complete=True '#ram.blocks=11'

# sections: the expected listing, and as many JSON entries as lines.
run sections "$tmp/pc-min.mig"
[ $rc -eq 0 ] || ko "sections pc-min: exit $rc"
cmp -s "$tmp/out" "$data/pc-min.sections" ||
	ko "sections pc-min differs from tests/data/pc-min.sections: $(diff "$data/pc-min.sections" "$tmp/out" | head -5)"
for f in pc-min:69 q35-dev:83; do
	name=${f%:*}
	run sections "$tmp/$name.mig"
	n=$(wc -l <"$tmp/out")
	[ "$n" -eq "${f#*:}" ] || ko "sections $name: $n lines, ${f#*:} expected"
	run sections --json "$tmp/$name.mig"
	check_json "sections --json $name" "#=${f#*:}"
done

# verify, from a file and from stdin.
for f in pc-min q35-dev; do
	run verify "$tmp/$f.mig"
	[ $rc -eq 0 ] || ko "verify $f: exit $rc: $(cat "$tmp/err")"
done
"$dump" verify -q - <"$tmp/pc-min.mig" >"$tmp/out" 2>&1 ||
	ko "verify - <pc-min: $(cat "$tmp/out")"
[ -s "$tmp/out" ] && ko "verify -q printed something"

# No trailer (suppress-vmdesc=on): the stream ends right after EOF.
eof=$(awk '$2 == "EOF" { print $1 }' "$data/pc-min.sections")
eof=$(($eof + 1))
head -c $eof "$tmp/pc-min.mig" >"$tmp/novmdesc.mig"
run info --json "$tmp/novmdesc.mig"
[ $rc -eq 0 ] || ko "info without a trailer: exit $rc: $(cat "$tmp/err")"
check_json novmdesc vmdesc=null section_types.VMDESC=0 section_types.EOF=1 \
	section_types.FULL=30 complete=True
cat "$tmp/novmdesc.mig" | "$dump" verify -q - ||
	ko "verify without a trailer, from a pipe"

# The golden vectors.  Their "ram" payloads are not RAM records (the
# codec's test data), so info warns and goes on, and verify refuses them.
for g in native native-zlib native-nocrc qemu; do
	run info --json "$data/golden-$g.bin"
	[ $rc -eq 0 ] || ko "info golden-$g: exit $rc: $(cat "$tmp/err")"
	grep -q "warning: offset 0x.*section 2 'ram'" "$tmp/err" ||
		ko "info golden-$g: no RAM warning"
	check_json golden-$g machine=pc-i440fx-7.2 section_types.START=1 \
		section_types.PART=2 section_types.END=1 section_types.FULL=2 \
		section_types.FOOTER=6 section_types.COMMAND=1 \
		section_types.CONFIGURATION=1 section_types.SUBSECTION=1 \
		section_types.EOF=1 section_types.VMDESC=1 vmdesc=105 \
		'capabilities=["x-ignore-shared"]' complete=True
	case $g in
	native | native-zlib)
		check_json golden-$g profile=native version=1 \
			checksum.type=crc32 checksum.verified=True ;;
	native-nocrc)
		check_json golden-$g profile=native checksum.type=none ;;
	qemu)
		check_json golden-$g profile=qemu version=3 checksum=null ;;
	esac
	run sections "$data/golden-$g.bin"
	[ "$(wc -l <"$tmp/out")" -eq 16 ] || ko "sections golden-$g: 16 lines expected"
	expect_invalid "verify golden-$g" verify "$data/golden-$g.bin"
	grep -q "section 2 'ram': RAM block" "$tmp/err" ||
		ko "verify golden-$g: $(cat "$tmp/err")"
done
# Without footers a device payload cannot be delimited: a precise stop.
expect_invalid "info golden-qemu-nofooters" info --json "$data/golden-qemu-nofooters.bin"
grep -q "footer (7e 00000002) followed by a valid record expected" "$tmp/err" ||
	ko "golden-qemu-nofooters: $(cat "$tmp/err")"
check_json nofooters complete=False section_types.START=1

# A footer naming another section is reported in the section it ends.
foot=$(awk '$2 == "FOOTER" && $4 == "timer" { print $1; exit }' "$data/pc-min.sections")
python3 - "$tmp/pc-min.mig" "$tmp/footer.mig" $(($foot + 4)) <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[int(sys.argv[3])] ^= 1
open(sys.argv[2], "wb").write(d)
EOF
expect_invalid "footer mismatch" verify "$tmp/footer.mig"
grep -q "section 0 'timer': " "$tmp/err" || ko "footer mismatch: $(cat "$tmp/err")"

# Truncated copies of pc-min (50 cuts) and bit flips in golden-native
# (50 positions; every record has a CRC) fail with status 1 and an
# offset; bit flips in pc-min (30 positions) never crash.
python3 - "$tmp" "$data/golden-native.bin" $eof <<'EOF'
import os, sys
tmp, golden, eof = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = open(os.path.join(tmp, "pc-min.mig"), "rb").read()
for i in range(50):
    cut = 1 + i * (len(d) - 2) // 49
    if cut == eof:
        cut += 1
    open(os.path.join(tmp, "cut-%02d" % i), "wb").write(d[:cut])
g = open(golden, "rb").read()
for i in range(50):
    pos = i * (len(g) - 1) // 49
    b = bytearray(g)
    b[pos] ^= 1 << (i % 8)
    open(os.path.join(tmp, "flip-%02d" % i), "wb").write(b)
for i in range(30):
    pos = 8 + i * (len(d) - 9) // 29
    b = bytearray(d)
    b[pos] ^= 1 << (i % 8)
    open(os.path.join(tmp, "qflip-%02d" % i), "wb").write(b)
EOF
for f in "$tmp"/cut-*; do
	expect_invalid "verify $(basename "$f")" verify "$f"
done
for f in "$tmp"/flip-*; do
	expect_invalid "info $(basename "$f")" info "$f"
done
for f in "$tmp"/qflip-*; do
	run verify "$f"
done

# Hand-made RAM records: every page kind (compressed and XBZRLE pages
# included), MULTIFD_FLUSH, and one damage of each kind RAM can have.
mkdir "$tmp/craft" || exit 99
python3 - "$tmp/craft" <<'EOF'
import struct, sys, zlib, os
out = sys.argv[1]
def cstr(s): return bytes([len(s)]) + s
def be64(v): return struct.pack(">Q", v)
def stream(pages, trailer=True):
    d = b"QEVM" + struct.pack(">I", 3)
    d += b"\x07" + struct.pack(">I", 4) + b"test"
    blocks = [(b"ram0", 0x4000), (b"rom", 0x1000)]
    tot = sum(l for _, l in blocks)
    d += b"\x01" + struct.pack(">I", 1) + cstr(b"ram") + struct.pack(">II", 0, 4)
    d += be64(tot | 4) + b"".join(cstr(n) + be64(l) for n, l in blocks) + be64(0x10)
    d += b"\x7e" + struct.pack(">I", 1)
    d += b"\x03" + struct.pack(">I", 1) + pages + be64(0x10) + b"\x7e" + struct.pack(">I", 1)
    d += b"\x04" + struct.pack(">I", 7) + cstr(b"dev") + struct.pack(">II", 0, 1) + b"\x7e\x00\x00\x00\x07xx" + b"\x7e" + struct.pack(">I", 7)
    d += b"\x00"
    if trailer:
        j = b'{"page_size": 4096, "devices": []}'
        d += b"\x06" + struct.pack(">I", len(j)) + j
    return d
page = bytes(range(256)) * 16
z = zlib.compress(page)
# xbzrle: zrun 0, nzrun 3 bytes -> first pair zrun may be 0 only at i==0
xb = bytes([0, 3]) + b"abc" + bytes([0x81, 0x01, 1]) + b"z"   # zrun 129, nzrun 1
good = (be64(0x0000 | 0x02) + cstr(b"ram0") + b"\x00"
        + be64(0x1000 | 0x08 | 0x20) + page
        + be64(0x2000 | 0x100 | 0x20) + struct.pack(">I", len(z)) + z
        + be64(0x3000 | 0x40 | 0x20) + b"\x01" + struct.pack(">H", len(xb)) + xb
        + be64(0x200)
        + be64(0x0000 | 0x02) + cstr(b"rom") + b"\x00")
cases = {
    "good": good,
    "hook": good + be64(0x80),
    "past": good + be64(0x1000 | 0x02 | 0x20) + b"\x00",
    "badz": be64(0x2000 | 0x100) + cstr(b"ram0") + struct.pack(">I", 10) + b"0123456789",
    "shortz": be64(0x2000 | 0x100) + cstr(b"ram0") + struct.pack(">I", len(z) + 3) + z + b"abc",
    "bigz": be64(0x2000 | 0x100) + cstr(b"ram0") + struct.pack(">I", 5000),
    "badxb": be64(0x3000 | 0x40) + cstr(b"ram0") + b"\x01" + struct.pack(">H", 3) + b"\x00\x05ab",
    "unkblk": be64(0x02) + cstr(b"nope") + b"\x00",
    "cont1": be64(0x22) + b"\x00",
    "fill": be64(0x02) + cstr(b"ram0") + b"\x07",
    "flags": be64(0x400 | 0x02) + cstr(b"ram0") + b"\x00",
}
for k, v in cases.items():
    open(os.path.join(out, k + ".mig"), "wb").write(stream(v))
open(os.path.join(out, "good-notrailer.mig"), "wb").write(stream(good, False))
EOF
run verify "$tmp/craft/good.mig"
[ $rc -eq 0 ] || ko "verify crafted RAM: $(cat "$tmp/err")"
run verify "$tmp/craft/good-notrailer.mig"
[ $rc -eq 0 ] || ko "verify crafted RAM without a trailer: $(cat "$tmp/err")"
run info --json "$tmp/craft/good.mig"
check_json crafted machine=test ram.pages.zero=2 ram.pages.normal=1 \
	ram.pages.compressed=1 ram.pages.xbzrle=1 ram.multifd_flush=1 \
	'ram.blocks={"ram0": 16384, "rom": 4096}' section_types.FULL=1
for c in "hook:RAM_SAVE_FLAG_HOOK (0x80)" "past:offset below 0x1000" \
	"badz:incorrect header check" "shortz:3 of 318 bytes in unused" \
	"bigz:compressBound(4096)) expected, found 5000" \
	"badxb:XBZRLE page of 'ram0'" "unkblk:block list expected, found 'nope'" \
	"cont1:found CONTINUE" "fill:fill byte 0 expected, found 0x07" \
	"flags:found 0x402"; do
	expect_invalid "verify ${c%%:*}" verify "$tmp/craft/${c%%:*}.mig"
	grep -qF "section 1 'ram': " "$tmp/err" && grep -qF "${c#*:}" "$tmp/err" ||
		ko "verify ${c%%:*}: $(cat "$tmp/err")"
done

# Exit statuses: I/O errors 3, usage errors 2.
run verify "$tmp/does-not-exist"
[ $rc -eq 3 ] || ko "missing file: exit $rc, 3 expected"
grep -q "cannot open" "$tmp/err" || ko "missing file: $(cat "$tmp/err")"
run info "$tmp"
[ $rc -eq 3 ] || ko "a directory: exit $rc, 3 expected"
for args in "frobnicate $tmp/pc-min.mig" "" "info" "--bogus info x" \
	"info a b" "state $tmp/pc-min.mig" "desc x" "extract x" "convert x"; do
	# shellcheck disable=SC2086
	run $args
	[ $rc -eq 2 ] || ko "'$args': exit $rc, 2 expected"
done
run state "$tmp/pc-min.mig"
grep -q "not implemented yet" "$tmp/err" || ko "state: $(cat "$tmp/err")"
run --help
[ $rc -eq 0 ] && grep -q "^Usage: migstream-dump COMMAND" "$tmp/out" || ko "--help"
run --version
[ $rc -eq 0 ] && grep -q "^migstream-dump (migstream) [0-9]" "$tmp/out" || ko "--version"

[ $fail -eq 0 ] && echo "ok: migstream-dump"
exit $fail
