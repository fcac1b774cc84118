#!/bin/sh
# migstream-dump on the QEMU 7.2 captures and the golden vectors: info
# --json against known figures, sections against an expected listing,
# verify, damaged copies (truncated, bit-flipped) failing cleanly with an
# offset, and the exit statuses of usage and I/O errors.
set -u
. "${top_srcdir:-.}/tests/lib/dump-test-lib.sh"

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

# Capabilities in two subsections, 128 in all: refused at the total, not
# written past the table (this once crashed the tool).
expect_invalid "capabilities" info "$src/tests/fuzz/corpus/dump_walk/config-caps-overflow"
grep -qF "at most 64 capabilities expected, found 64 more after 64" "$tmp/err" ||
	ko "capabilities: $(cat "$tmp/err")"
# ... and info's status line says where, once.
grep -q "^status:     stopped at offset 0xd3: at most 64" "$tmp/out" ||
	ko "capabilities: status line: $(grep status "$tmp/out")"

# Exit statuses: I/O errors 3, usage errors 2.
run verify "$tmp/does-not-exist"
[ $rc -eq 3 ] || ko "missing file: exit $rc, 3 expected"
grep -q "cannot open" "$tmp/err" || ko "missing file: $(cat "$tmp/err")"
# A directory as FILE is a usage error (2) in every command.
for args in "info @" "sections @" "verify @" "state @" "desc @" \
	"extract $tmp/x @" "convert --to native @ $tmp/x"; do
	# shellcheck disable=SC2086
	run $(echo "$args" | sed "s|@|$tmp|")
	[ $rc -eq 2 ] || ko "a directory, '$args': exit $rc, 2 expected"
	grep -q "a directory" "$tmp/err" || ko "a directory, '$args': $(cat "$tmp/err")"
done
for args in "frobnicate $tmp/pc-min.mig" "" "info" "--bogus info x" \
	"info a b" "state" "state a b" "state --desc" "desc" "desc a b" \
	"extract x" "convert x"; do
	# shellcheck disable=SC2086
	run $args
	[ $rc -eq 2 ] || ko "'$args': exit $rc, 2 expected"
done
run --help
[ $rc -eq 0 ] && grep -q "^Usage: migstream-dump COMMAND" "$tmp/out" || ko "--help"
run --version
[ $rc -eq 0 ] && grep -q "^migstream-dump (migstream) [0-9]" "$tmp/out" || ko "--version"

# ---------------------------------------------------------------------
# convert and extract.
# ---------------------------------------------------------------------

# QEMU -> native (plain, compressed, through pipes) -> QEMU: the same
# bytes; the native copies verify.
for f in pc-min q35-dev; do
	for c in "" "--compress" "--compress=1"; do
		# shellcheck disable=SC2086
		run convert --to native $c "$tmp/$f.mig" "$tmp/$f.msn"
		[ $rc -eq 0 ] || ko "convert $f to native $c: exit $rc: $(cat "$tmp/err")"
		[ -e "$tmp/$f.msn.tmp" ] && ko "convert $f: $f.msn.tmp left behind"
		run verify "$tmp/$f.msn"
		[ $rc -eq 0 ] || ko "verify native $f $c: $(cat "$tmp/err")"
		run info --json "$tmp/$f.msn"
		check_json "native $f $c" profile=native checksum.type=crc32 \
			checksum.verified=True complete=True
		run convert --to qemu "$tmp/$f.msn" "$tmp/$f.back"
		[ $rc -eq 0 ] || ko "convert $f back $c: exit $rc: $(cat "$tmp/err")"
		cmp -s "$tmp/$f.mig" "$tmp/$f.back" ||
			ko "convert $f $c: QEMU -> native -> QEMU differs"
	done
	"$dump" convert --to native --compress - - <"$tmp/$f.mig" |
		"$dump" convert --to qemu - - >"$tmp/$f.pipe" ||
		ko "convert $f through pipes"
	cmp -s "$tmp/$f.mig" "$tmp/$f.pipe" || ko "convert $f through pipes differs"
done
[ "$(wc -c <"$tmp/pc-min.msn")" -lt "$(wc -c <"$tmp/pc-min.mig")" ] ||
	ko "convert --compress=1: pc-min is not smaller"

# The golden native vectors -> QEMU -> native -> QEMU: the same QEMU
# bytes (golden-native is golden-qemu re-framed).
for g in native native-zlib native-nocrc; do
	run convert --to qemu "$data/golden-$g.bin" "$tmp/g-$g.q"
	[ $rc -eq 0 ] || ko "convert golden-$g to qemu: exit $rc: $(cat "$tmp/err")"
	run convert --to native "$tmp/g-$g.q" "$tmp/g-$g.n"
	[ $rc -eq 0 ] || ko "convert golden-$g back: exit $rc: $(cat "$tmp/err")"
	run info --json "$tmp/g-$g.n"
	check_json "golden-$g converted" profile=native complete=True \
		section_types.FOOTER=6 section_types.COMMAND=1 vmdesc=105
	run convert --to qemu "$tmp/g-$g.n" "$tmp/g-$g.q2"
	cmp -s "$tmp/g-$g.q" "$tmp/g-$g.q2" || ko "golden-$g: QEMU copies differ"
done
cmp -s "$tmp/g-native.q" "$data/golden-qemu.bin" ||
	ko "golden-native converted to QEMU is not golden-qemu"

# Bad input: status 1 with an offset, and neither OUT nor OUT.tmp left.
head -c 5000 "$tmp/pc-min.mig" >"$tmp/cut.mig"
expect_invalid "convert a cut stream" convert --to native "$tmp/cut.mig" "$tmp/cut.out"
ls "$tmp"/cut.out* >/dev/null 2>&1 && ko "convert a cut stream: output left behind"
echo "garbage" >"$tmp/junk.mig"
expect_invalid "convert junk" convert --to qemu "$tmp/junk.mig" "$tmp/junk.out"
ls "$tmp"/junk.out* >/dev/null 2>&1 && ko "convert junk: output left behind"
echo keep >"$tmp/keep.out"
run convert --to native "$tmp/cut.mig" "$tmp/keep.out"
[ "$(cat "$tmp/keep.out")" = keep ] || ko "convert: a failed run replaced OUT"
for args in "convert --to foo a b" "convert --to qemu a" \
	"convert --to qemu --compress a b" "convert --to native --compress=10 a b" \
	"extract d" "extract d a b"; do
	# shellcheck disable=SC2086
	run $args
	[ $rc -eq 2 ] || ko "'$args': exit $rc, 2 expected"
done

# extract pc-min: every block at its size, sparse, desc.json as in the
# stream, and the pages that name their block as in the stream.
run extract "$tmp/ex" "$tmp/pc-min.mig"
[ $rc -eq 0 ] || ko "extract pc-min: exit $rc: $(cat "$tmp/err")"
run info --json "$tmp/pc-min.mig"
cp "$tmp/out" "$tmp/pc-min.json"
python3 - "$tmp/ex" "$tmp/pc-min.json" "$tmp/pc-min.mig" $eof <<'EOF' || ko "extract pc-min"
import json, os, re, struct, sys
d, info, mig = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3], "rb").read()
bad = 0
def safe(n):
    return "".join(c if c.isalnum() or c in "_-+,=@:" or (c == "." and i)
                   else "%%%02X" % ord(c) for i, c in enumerate(n))
for name, size in info["ram"]["blocks"].items():
    p = os.path.join(d, safe(name))
    st = os.stat(p)
    if st.st_size != size:
        print("%s: size %d, %d expected" % (p, st.st_size, size)); bad = 1
big = os.stat(os.path.join(d, "pc.ram"))
if big.st_size != 16 << 20 or big.st_blocks * 512 >= big.st_size:
    print("pc.ram: not sparse (%d blocks)" % big.st_blocks); bad = 1
# Normal pages (flags 0x08) that name their block: as in the stream.
checked = 0
for name in info["ram"]["blocks"]:
    n = name.encode()
    for m in re.finditer(re.escape(bytes([len(n)]) + n), mig):
        v = struct.unpack(">Q", mig[m.start() - 8:m.start()])[0]
        if v & 0xfff != 0x08:
            continue
        page = mig[m.end():m.end() + 4096]
        f = open(os.path.join(d, safe(name)), "rb")
        f.seek(v & ~0xfff)
        if f.read(4096) != page or not any(page):
            print("%s page 0x%x differs from the stream" % (name, v & ~0xfff)); bad = 1
        checked += 1
if checked < 2:
    print("only %d pages cross-checked" % checked); bad = 1
j = int(sys.argv[4]) + 5  # after EOF: u8 0x06, be32 length
if open(os.path.join(d, "desc.json"), "rb").read() != mig[j:]:
    print("desc.json differs from the stream's VM description"); bad = 1
json.load(open(os.path.join(d, "desc.json")))
sys.exit(bad)
EOF
# state.json: what state prints.
run state "$tmp/pc-min.mig"
python3 - "$tmp/ex/state.json" "$tmp/out" <<'EOF' || ko "extract pc-min: state.json is not what state prints"
import json, sys
sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))
EOF
# From stdin, into an existing directory: the same files.
run extract "$tmp/ex2" - <"$tmp/pc-min.mig"
[ $rc -eq 0 ] || ko "extract from stdin: $(cat "$tmp/err")"
for f in "$tmp"/ex/*; do
	cmp -s "$f" "$tmp/ex2/$(basename "$f")" || ko "extract from stdin: $(basename "$f") differs"
done

# Hostile block names stay inside DIR.
mkdir -p "$tmp/jail/in" || exit 99
touch "$tmp/jail/marker"
python3 - "$tmp/evil.mig" <<'EOF'
import struct, sys
def cstr(s): return bytes([len(s)]) + s
def be64(v): return struct.pack(">Q", v)
names = [b"../evil", b"/etc/x", b"..", b".", b"a/../../b", b"desc.json",
         b"\x01ctl\nx", b"%2E"]
d = b"QEVM" + struct.pack(">I", 3) + b"\x07" + struct.pack(">I", 4) + b"test"
d += b"\x01" + struct.pack(">I", 1) + cstr(b"ram") + struct.pack(">II", 0, 4)
d += be64(0x1000 * len(names) | 4) + b"".join(cstr(n) + be64(0x1000) for n in names)
d += be64(0x10) + b"\x7e" + struct.pack(">I", 1)
d += b"\x03" + struct.pack(">I", 1)
d += b"".join(be64(0x08) + cstr(n) + bytes([65 + i]) * 4096 for i, n in enumerate(names))
d += be64(0x10) + b"\x7e" + struct.pack(">I", 1) + b"\x00"
j = b'{"page_size": 4096, "devices": []}'
d += b"\x06" + struct.pack(">I", len(j)) + j
open(sys.argv[1], "wb").write(d)
EOF
run extract "$tmp/jail/in/d" "$tmp/evil.mig"
[ $rc -eq 0 ] || ko "extract hostile names: exit $rc: $(cat "$tmp/err")"
out=$(cd "$tmp/jail" && find . -newer marker ! -path './in/d/*' ! -path ./in/d ! -path ./in ! -path . | sort)
[ -z "$out" ] || ko "extract wrote outside DIR: $out"
n=$(find "$tmp/jail/in/d" -type f | wc -l)
[ "$n" -eq 10 ] || ko "extract hostile names: $n files, 10 expected (8 blocks, desc.json, state.json)"
find "$tmp/jail/in/d" -mindepth 1 -type d | grep -q . && ko "extract made directories"
ls "$tmp/jail/in/d" | LC_ALL=C grep -q '[[:cntrl:]]' && ko "extract: control characters in a name"
[ "$(head -c 3 "$tmp/jail/in/d/%2E.%2Fevil")" = AAA ] || ko "extract: ../evil not in %2E.%2Fevil"
grep -q '^{"page_size"' "$tmp/jail/in/d/desc.json" || ko "extract: desc.json overwritten by a block"

# Every page kind of the crafted RAM stream: zero, normal, compressed
# (inflated) and XBZRLE (applied to the zeros of an unsent page).
# Its trailer does not describe its device 'dev': the blocks and
# desc.json are written, state.json is not, and the status is 1.
run extract "$tmp/exc" "$tmp/craft/good.mig"
[ $rc -eq 1 ] || ko "extract crafted RAM: exit $rc, 1 expected: $(cat "$tmp/err")"
grep -q "offset 0x[0-9a-f]*: section 7 'dev': device 'dev' instance 0: not in the VM description" "$tmp/err" &&
	grep -q "exc: state.json not written; the RAM blocks and desc.json were" "$tmp/err" ||
	ko "extract crafted RAM: $(cat "$tmp/err")"
[ -e "$tmp/exc/state.json" ] && ko "extract crafted RAM: a state.json left"
[ -e "$tmp/exc/desc.json" ] || ko "extract crafted RAM: no desc.json"
python3 - "$tmp/exc" <<'EOF' || ko "extract crafted RAM: wrong content"
import os, sys
d = sys.argv[1]
page = bytes(range(256)) * 16
ram0 = open(os.path.join(d, "ram0"), "rb").read()
xb = bytearray(4096); xb[0:3] = b"abc"; xb[132] = ord("z")
want = bytes(4096) + page + page + bytes(xb)
sys.exit(ram0 != want or open(os.path.join(d, "rom"), "rb").read() != bytes(4096))
EOF
# A symbolic link planted in DIR is not followed.
mkdir "$tmp/exl" && ln -s "$tmp/victim" "$tmp/exl/ram0"
run extract "$tmp/exl" "$tmp/craft/good.mig"
[ $rc -eq 3 ] || ko "extract over a symbolic link: exit $rc, 3 expected"
[ -e "$tmp/victim" ] && ko "extract followed a symbolic link"

# Optional: QEMU loads the stream converted back from native.
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	{ sleep 5; echo "info migrate"; echo quit; } |
		timeout 60 qemu-system-x86_64 -M pc-i440fx-7.2 -m 16 -nodefaults -S \
			-display none -monitor stdio -serial none \
			-incoming "exec:cat $tmp/pc-min.back" >"$tmp/qemu.log" 2>&1
	grep -qi "load of migration failed\|error while loading" "$tmp/qemu.log" &&
		ko "QEMU refused the converted stream: $(tail -3 "$tmp/qemu.log")"
fi

# ---------------------------------------------------------------------
# state and desc.
# ---------------------------------------------------------------------

# The stream's trailer, found by the exact-end rule (0x06, be32 len, the
# JSON ending the file, after the EOF byte): written to $2, its offset
# printed.
trailer() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
for p in range(len(d) - 6, 0, -1):
    if (d[p] == 6 and d[p + 5] == ord("{") and d[p - 1] == 0 and
            p + 5 + struct.unpack(">I", d[p + 1:p + 5])[0] == len(d)):
        open(sys.argv[2], "wb").write(d[p + 5:])
        print(p)
        sys.exit(0)
sys.exit(1)
EOF
}
# JSON-equal: the files $1 and $2 (gzip'ed if named *.gz).
json_equal() {
	python3 - "$1" "$2" <<'EOF'
import gzip, json, sys
def load(f):
    return json.load(gzip.open(f, "rt") if f.endswith(".gz") else open(f))
sys.exit(load(sys.argv[1]) != load(sys.argv[2]))
EOF
}
for f in pc-min q35-dev; do
	# state: what QEMU 7.2's analyze-migration.py -d state prints.
	run state "$tmp/$f.mig"
	[ $rc -eq 0 ] || ko "state $f: exit $rc: $(cat "$tmp/err")"
	json_equal "$tmp/out" "$data/qemu/$f.state.json.gz" ||
		ko "state $f differs from tests/data/qemu/$f.state.json.gz"
	# desc: the trailer as Python's json.dumps(indent=4) prints it.
	trailer "$tmp/$f.mig" "$tmp/$f.vmdesc" >/dev/null || ko "no trailer in $f"
	python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), indent=4))' \
		<"$tmp/$f.vmdesc" >"$tmp/$f.desc-py" || exit 99
	run desc "$tmp/$f.mig"
	[ $rc -eq 0 ] || ko "desc $f: exit $rc: $(cat "$tmp/err")"
	cmp -s "$tmp/out" "$tmp/$f.desc-py" || ko "desc $f differs from Python's"
	cp "$tmp/out" "$tmp/$f.desc"
done
# From a pipe (spooled), and with --desc (streamed).
cat "$tmp/pc-min.mig" | "$dump" state - >"$tmp/out" 2>"$tmp/err" ||
	ko "state - <pc-min: $(cat "$tmp/err")"
json_equal "$tmp/out" "$data/qemu/pc-min.state.json.gz" || ko "state - <pc-min differs"
cat "$tmp/q35-dev.mig" | "$dump" state --desc "$tmp/q35-dev.desc" - >"$tmp/out" 2>"$tmp/err" ||
	ko "state --desc - <q35-dev: $(cat "$tmp/err")"
json_equal "$tmp/out" "$data/qemu/q35-dev.state.json.gz" || ko "state --desc q35-dev differs"

# No trailer (cut right after EOF, found by the exact-end rule): a clear
# error for state and desc; with --desc, state still decodes it.
cut=$(trailer "$tmp/pc-min.mig" "$tmp/x") || ko "no trailer in pc-min"
head -c "$cut" "$tmp/pc-min.mig" >"$tmp/cut-trailer.mig"
for c in state desc; do
	run $c "$tmp/cut-trailer.mig"
	[ $rc -eq 1 ] || ko "$c without a trailer: exit $rc, 1 expected"
	grep -q "offset 0x[0-9a-f]*: no VM description (vmdesc) trailer" "$tmp/err" ||
		ko "$c without a trailer: $(cat "$tmp/err")"
done
run state --desc "$tmp/pc-min.desc" "$tmp/cut-trailer.mig"
[ $rc -eq 0 ] || ko "state --desc without a trailer: exit $rc: $(cat "$tmp/err")"
json_equal "$tmp/out" "$data/qemu/pc-min.state.json.gz" ||
	ko "state --desc without a trailer differs"

# A description that does not fit: the device (and field) are named.
python3 - "$tmp/pc-min.vmdesc" "$tmp/d" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for dev in d["devices"]:
    if dev["name"] == "timer":
        dev["fields"][0]["size"] = 4
json.dump(d, open(sys.argv[2] + "-size.json", "w"))
d = json.load(open(sys.argv[1]))
d["devices"] = [x for x in d["devices"] if x["name"] != "apic"]
json.dump(d, open(sys.argv[2] + "-nodev.json", "w"))
EOF
expect_invalid "state --desc (wrong size)" state --desc "$tmp/d-size.json" "$tmp/pc-min.mig"
grep -q "section 0 'timer': " "$tmp/err" || ko "state wrong size: $(cat "$tmp/err")"
expect_invalid "state --desc (no apic)" state --desc "$tmp/d-nodev.json" "$tmp/pc-min.mig"
grep -q "section 7 'apic': device 'apic' instance 0: not in the VM description" "$tmp/err" ||
	ko "state no apic: $(cat "$tmp/err")"
# A truncated device section names the field.
off=$(awk '$2 == "FULL" && $4 == "cpu" { print $1; exit }' "$data/pc-min.sections")
head -c $(($off + 100)) "$tmp/pc-min.mig" >"$tmp/cut-cpu.mig"
expect_invalid "state of a cut cpu section" state --desc "$tmp/pc-min.desc" "$tmp/cut-cpu.mig"
grep -q "section 5 'cpu': field 'env\.[^']*': uint64 (8 bytes) expected, end of stream" "$tmp/err" ||
	ko "state of a cut cpu section: $(cat "$tmp/err")"
run state --desc "$tmp/does-not-exist" "$tmp/pc-min.mig"
[ $rc -eq 3 ] || ko "state --desc missing: exit $rc, 3 expected"

# Names from the stream: text output escapes
# control characters and invalid UTF-8, JSON output carries UTF-8 as it
# is and invalid UTF-8 in the text form.
python3 - "$tmp" <<'EOF'
import struct, sys
def rec(t, i, name):
    return (bytes([t]) + struct.pack(">I", i) + bytes([len(name)]) + name +
            struct.pack(">II", 0, 1))
def stream(machine, idstr):
    return (b"QEVM" + struct.pack(">I", 3) + b"\x07" +
            struct.pack(">I", len(machine)) + machine + rec(4, 2, idstr) +
            b"y\x7e" + struct.pack(">I", 2) + b"\x00\x06" +
            struct.pack(">I", 2) + b"{}")
open(sys.argv[1] + "/esc.mig", "wb").write(
    stream(b"pc-\x1b[31mred\x07", b"bad\xff\\\x9b"))
open(sys.argv[1] + "/utf8.mig", "wb").write(
    stream("pc-\u00e9".encode(), "d\u00e9v\x1b".encode()))
EOF
for c in info sections verify; do
	run $c "$tmp/esc.mig"
	[ $rc -eq 0 ] || ko "$c of escaped names: exit $rc"
	if LC_ALL=C grep -q "$(printf '\033')" "$tmp/out" "$tmp/err"; then
		ko "$c prints an escape byte from the stream"
	fi
done
run info "$tmp/esc.mig"
grep -qF 'machine:    pc-\x1b[31mred\x07' "$tmp/out" || ko "info machine: $(cat "$tmp/out")"
run sections "$tmp/esc.mig"
grep -qF 'bad\xff\\\x9b' "$tmp/out" || ko "sections idstr: $(cat "$tmp/out")"
run info --json "$tmp/utf8.mig"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["machine"] == "pc-\u00e9", d["machine"]
' "$tmp/out" || ko "info --json of a UTF-8 machine type: $(cat "$tmp/out")"
run sections --json "$tmp/esc.mig"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d[0]["machine"] == "pc-\x1b[31mred\x07", d[0]
assert d[1]["idstr"] == "bad\\xff\\\\\\x9b", d[1]
' "$tmp/out" || ko "sections --json of invalid UTF-8: $(cat "$tmp/out")"
run sections --json "$tmp/utf8.mig"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d[1]["idstr"] == "d\u00e9v\x1b", d[1]
' "$tmp/out" || ko "sections --json of UTF-8: $(cat "$tmp/out")"

# gzip input: every command reads a .gz capture as
# the stream inside, from a file or standard input, with the same output.
gz="$data/qemu/pc-min.mig.gz"
for args in "sections" "sections --json" "verify -q" "desc" "state"; do
	# shellcheck disable=SC2086
	"$dump" $args "$tmp/pc-min.mig" >"$tmp/plain.out" 2>&1
	# shellcheck disable=SC2086
	"$dump" $args "$gz" >"$tmp/gz.out" 2>&1
	rc=$?
	[ $rc -eq 0 ] || ko "$args of a .gz: exit $rc: $(head -c 300 "$tmp/gz.out")"
	cmp -s "$tmp/plain.out" "$tmp/gz.out" || ko "$args of a .gz differs"
	# shellcheck disable=SC2086
	"$dump" $args - <"$gz" >"$tmp/gz.out" 2>&1 || ko "$args - of a .gz failed"
	sed 's/<stdin>/PC/' "$tmp/gz.out" >"$tmp/gz2.out"
	sed "s|$tmp/pc-min.mig|PC|" "$tmp/plain.out" | cmp -s - "$tmp/gz2.out" ||
		ko "$args - of a .gz differs"
done
run convert --to native "$gz" "$tmp/gz.native"
[ $rc -eq 0 ] || ko "convert of a .gz: $(cat "$tmp/err")"
run convert --to native "$tmp/pc-min.mig" "$tmp/plain.native"
cmp -s "$tmp/gz.native" "$tmp/plain.native" || ko "convert of a .gz differs"
run extract "$tmp/gz.x" "$gz"
[ $rc -eq 0 ] || ko "extract of a .gz: $(cat "$tmp/err")"
run extract "$tmp/plain.x" "$tmp/pc-min.mig"
diff -r "$tmp/gz.x" "$tmp/plain.x" >/dev/null || ko "extract of a .gz differs"
# Two members, as "cat a.gz b.gz" makes them: one stream when joined.
head -c 1000 "$tmp/pc-min.mig" | gzip >"$tmp/two.gz"
tail -c +1001 "$tmp/pc-min.mig" | gzip >>"$tmp/two.gz"
run verify -q "$tmp/two.gz"
[ $rc -eq 0 ] || ko "verify of a two-member .gz: $(cat "$tmp/err")"

# Standard input (item 6): the magic is checked before anything is copied
# (a never-ending pipe of junk is refused at once), the copy goes to
# $TMPDIR, and it stops at --spool-max.
command -v timeout >/dev/null 2>&1 && {
	(printf 'junk'; sleep 30) | timeout -k 1 10 "$dump" desc - >/dev/null 2>"$tmp/err"
	rc=$?
	[ $rc -eq 1 ] || ko "desc - of a slow junk pipe: exit $rc, 1 expected"
	grep -q 'offset 0x0: magic' "$tmp/err" || ko "desc - of junk: $(cat "$tmp/err")"
}
cat "$tmp/pc-min.mig" | TMPDIR="$tmp/no-such-dir" "$dump" desc - >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 3 ] || ko "desc - with a missing TMPDIR: exit $rc, 3 expected"
grep -qF "cannot create a temporary file in $tmp/no-such-dir (TMPDIR)" "$tmp/err" ||
	ko "desc - ignores TMPDIR: $(cat "$tmp/err")"
mkdir "$tmp/spool"
cat "$tmp/pc-min.mig" | TMPDIR="$tmp/spool" "$dump" desc - >"$tmp/out" 2>&1 ||
	ko "desc - with TMPDIR: $(cat "$tmp/out")"
[ -z "$(ls "$tmp/spool")" ] || ko "desc - left its temporary file in TMPDIR"
cat "$tmp/pc-min.mig" | "$dump" --spool-max 100K state - >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || ko "state - over --spool-max: exit $rc, 1 expected"
grep -qF "more than 102400 bytes to copy to a temporary file (--spool-max" "$tmp/err" ||
	ko "state - over --spool-max: $(cat "$tmp/err")"

# The trailer desc prints is the one the walk ends at (item 2): two
# captures joined are refused where the first one ends.
cat "$tmp/pc-min.mig" "$tmp/q35-dev.mig" >"$tmp/joined.mig"
end=$(stat -c %s "$tmp/pc-min.mig")
for c in desc verify info; do
	run $c "$tmp/joined.mig"
	[ $rc -eq 1 ] || ko "$c of joined captures: exit $rc, 1 expected"
	grep -q "offset $(printf '0x%x' "$end"): data after the VM description" "$tmp/err" ||
		ko "$c of joined captures: $(cat "$tmp/err")"
done

# The footer scan and the live set (item 7).  A footer just before the
# end of each scan window, followed by a START with a 255-byte name, is
# found; and 65536 open sections whose ids collide in a plain hash (all
# multiples of 2^16) end in another order, then a PART of an ended one is
# refused.
python3 - "$tmp" <<'EOF'
import struct, sys
d = sys.argv[1]
def head(t, i, name):
    return (bytes([t]) + struct.pack(">I", i) + bytes([len(name)]) + name +
            struct.pack(">II", 0, 1))
def foot(i):
    return b"\x7e" + struct.pack(">I", i)
end = b"\x00\x06" + struct.pack(">I", 2) + b"{}"
sizes = [w - s for w in (1024, 2048, 262144, 524288) for s in range(262, 284)]
with open(d + "/border.list", "w") as l:
    for n in sizes:
        s = (b"QEVM" + struct.pack(">I", 3) + head(4, 1, b"dev") +
             bytes([0x41]) * n + foot(1) + head(1, 2, b"n" * 255) + foot(2) +
             b"\x03" + struct.pack(">I", 2) + foot(2) + end)
        open("%s/border-%d.mig" % (d, n), "wb").write(s)
        l.write("%s/border-%d.mig\n" % (d, n))
ids = [k << 16 for k in range(65536)]
s = [b"QEVM" + struct.pack(">I", 3)]
s += [head(1, i, b"d") + b"x" + foot(i) for i in ids]
s += [b"\x03" + struct.pack(">I", i) + b"y" + foot(i) for i in ids[1::2]]
s += [b"\x03" + struct.pack(">I", i) + b"y" + foot(i) for i in ids[::2]]
open(d + "/live.mig", "wb").write(b"".join(s) + end)
s.insert(-1, b"\x02" + struct.pack(">I", ids[5]) + b"z" + foot(ids[5]))
open(d + "/live-ended.mig", "wb").write(b"".join(s) + end)
EOF
while read -r f; do
	run verify -q "$f"
	[ $rc -eq 0 ] || ko "footer at a scan window's end, $f: $(cat "$tmp/err")"
done <"$tmp/border.list"
run verify -q "$tmp/live.mig"
[ $rc -eq 0 ] || ko "65536 colliding live ids: $(cat "$tmp/err")"
run verify "$tmp/live-ended.mig"
[ $rc -eq 1 ] || ko "PART of an ended section: exit $rc, 1 expected"
# state: footerless streams and opaque sections (the state helper's cases).
gzip -dc "$data/qemu/nf-min.mig.gz" >"$tmp/nf-min.mig" || exit 99
gzip -dc "$data/qemu/pc-block.mig.gz" >"$tmp/pc-block.mig" || exit 99
# The native copy of block migration: the same state, opaque sections
# included (their bytes known from the record lengths).
for n in nf-min pc-block; do
	run convert --to native "$tmp/$n.mig" "$tmp/$n.msn"
	[ $rc -eq 0 ] || ko "convert $n: $(cat "$tmp/err")"
	run state "$tmp/$n.msn"
	[ $rc -eq 0 ] || ko "state of native $n: exit $rc: $(cat "$tmp/err")"
	python3 -c 'import gzip, json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(gzip.open(sys.argv[2], "rt")))' \
		"$tmp/out" "$data/qemu/$n.state.json.gz" || ko "state of native $n differs"
done
# Footerless without its trailer: refused alone, decoded with --desc.
run desc "$tmp/nf-min.mig"
cp "$tmp/out" "$tmp/nf-min.desc"
eof=$(awk '$2 == "EOF" { print $1 }' "$data/qemu/nf-min.sections")
head -c $(($eof + 1)) "$tmp/nf-min.mig" >"$tmp/nf-novmdesc.mig"
expect_invalid "info of footerless without a trailer" info "$tmp/nf-novmdesc.mig"
run state --desc "$tmp/nf-min.desc" "$tmp/nf-novmdesc.mig"
[ $rc -eq 0 ] || ko "state --desc of footerless without a trailer: exit $rc: $(cat "$tmp/err")"
python3 -c 'import gzip, json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(gzip.open(sys.argv[2], "rt")))' \
	"$tmp/out" "$data/qemu/nf-min.state.json.gz" || ko "state --desc of footerless without a trailer differs"
# -m on a footerless stream: every page record.
run state -m "$tmp/nf-min.mig"
python3 -c 'import json, sys; sys.exit(len(json.load(open(sys.argv[1]))["ram (2)"]["memory"]) != 4226)' "$tmp/out" ||
	ko "state -m of nf-min: 4226 pages expected"

[ $fail -eq 0 ] && echo "ok: migstream-dump"
exit $fail
