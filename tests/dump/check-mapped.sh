#!/bin/sh
# migstream-dump on mapped snapshot files (magic "MSMAPPED"): convert
# --to mapped from the QEMU captures, then info, verify, sections, extract,
# state, desc on them; mapped -> native -> mapped byte-exact (cmp); and
# hand-made hostile files (truncations at every region boundary, flipped
# bits in each part, COMPLETE clear, overlapping regions, D not aligned,
# huge lengths, too many blocks), each refused by verify with its offset.
# The tool reads and writes the layout on its own (tools/dump-mapped.c),
# not with the library's ms_ram_mapped_*().
set -u
. "${top_srcdir:-.}/tests/lib/dump-test-lib.sh"

caps="pc-min pc-dev pc-block pc-compress q35-run"
for n in $caps nf-min; do
	gunzip -c "$data/qemu/$n.mig.gz" >"$tmp/$n.mig" || exit 99
done

for n in $caps nf-min; do
	m="$tmp/$n.map"
	run convert --to mapped "$tmp/$n.mig" "$m"
	[ $rc -eq 0 ] || { ko "$n: convert --to mapped: exit $rc: $(cat "$tmp/err")"; continue; }
	run verify "$m"
	[ $rc -eq 0 ] || ko "$n: verify of the mapped file: exit $rc: $(cat "$tmp/err")"
	grep -q "every page's CRC verified" "$tmp/out" || ko "$n: verify: $(cat "$tmp/out")"
	# The stream and the mapped file hold the same pages.
	run -j info "$tmp/$n.mig"
	cp "$tmp/out" "$tmp/$n.stream.json"
	run -j info "$m"
	[ $rc -eq 0 ] || ko "$n: info --json: exit $rc"
	python3 - "$tmp/$n.stream.json" "$tmp/out" <<'PYEOF' || ko "$n: info --json of the mapped file"
import json, sys
s, m = (json.load(open(f)) for f in sys.argv[1:])
assert m["profile"] == "mapped" and m["complete"], m
lay = m["layout"]
names = [b["name"] for b in lay["blocks"]]
assert names == list(s["ram"]["blocks"]), names
for b in lay["blocks"]:
    assert b["used_length"] == s["ram"]["blocks"][b["name"]]
    assert b["pages_offset"] % (1 << 20) == 0
    assert 0 <= b["zero_pages"] <= b["pages_saved"] <= b["used_length"] // 4096
assert lay["dev_offset"] + lay["dev_length"] == lay["file_size"]
d = m["device_stream"]
assert d["profile"] == "native" and d["complete"], d
assert sum(d["ram"]["pages"].values()) == 0, d["ram"]
PYEOF
	# Round trips: mapped -> native -> mapped is byte-exact; -> qemu
	# verifies with every saved page.
	run convert --to native "$m" "$tmp/$n.nat"
	[ $rc -eq 0 ] || ko "$n: convert mapped --to native: exit $rc: $(cat "$tmp/err")"
	run convert --to mapped "$tmp/$n.nat" "$tmp/$n.rt"
	[ $rc -eq 0 ] || ko "$n: convert native --to mapped: exit $rc: $(cat "$tmp/err")"
	cmp -s "$m" "$tmp/$n.rt" || ko "$n: mapped -> native -> mapped is not byte-exact"
	run convert --to qemu "$m" "$tmp/$n.qemu"
	[ $rc -eq 0 ] || ko "$n: convert mapped --to qemu: exit $rc: $(cat "$tmp/err")"
	run verify "$tmp/$n.qemu"
	[ $rc -eq 0 ] || ko "$n: the qemu output does not verify: $(cat "$tmp/err")"
	# extract copies the regions: the same block files as from the stream.
	run extract "$tmp/$n.exs" "$tmp/$n.mig"
	run extract "$tmp/$n.exm" "$m"
	[ $rc -eq 0 ] || ko "$n: extract of the mapped file: exit $rc: $(cat "$tmp/err")"
	for f in "$tmp/$n.exs"/*; do
		cmp -s "$f" "$tmp/$n.exm/${f##*/}" || ko "$n: extract: ${f##*/} differs"
	done
	# state and desc read the device stream.
	"$dump" state "$tmp/$n.mig" >"$tmp/s1" 2>/dev/null
	"$dump" state "$m" >"$tmp/s2" 2>/dev/null
	cmp -s "$tmp/s1" "$tmp/s2" || ko "$n: state of the mapped file differs from the stream's"
	run desc "$m"
	[ $rc -eq 0 ] || ko "$n: desc of the mapped file: exit $rc: $(cat "$tmp/err")"
done

# Holes: a zero page takes no space (the mapped file's allocated blocks
# stay below the stream's RAM data plus the device stream).
alloc=$(du -k "$tmp/pc-min.map" | cut -f1)
[ "$alloc" -lt 4096 ] || ko "pc-min.map: $alloc KiB allocated for 16 MiB of mostly zero RAM"

# Rounds: a QEMU stream that writes pages again (the last write wins) and
# turns a page zero (a hole again), against the same RAM in one round: the
# mapped files have the same regions, hold the final pages, and the zeroed
# page takes no space.
python3 - "$tmp/rounds.mig" "$tmp/once.mig" <<'PYEOF' || exit 99
import struct, sys
be32 = lambda v: struct.pack(">I", v)
be64 = lambda v: struct.pack(">Q", v)
cstr = lambda s: bytes([len(s)]) + s
def stream(rounds):
    d = b"QEVM" + be32(3) + b"\x07" + be32(4) + b"test"
    d += b"\x01" + be32(1) + cstr(b"ram") + be32(0) + be32(4)
    d += be64((1 << 20) | 4) + cstr(b"pc.ram") + be64(1 << 20)
    d += be64(0x10) + b"\x7e" + be32(1)
    for i, pages in enumerate(rounds):
        d += (b"\x03" if i == len(rounds) - 1 else b"\x02") + be32(1)
        first = True
        for addr, byte in pages:
            flags = (0x02 if byte is None else 0x08) | (0 if first else 0x20)
            d += be64(addr * 4096 | flags) + (cstr(b"pc.ram") if first else b"")
            d += b"\x00" if byte is None else bytes([byte]) * 4096
            first = False
        d += be64(0x10) + b"\x7e" + be32(1)
    d += b"\x00"
    j = b'{"page_size": 4096, "devices": []}'
    return d + b"\x06" + be32(len(j)) + j
open(sys.argv[1], "wb").write(stream([[(0, 0x41), (1, 0x42), (2, 0x43), (200, 0x44)],
                                      [(0, 0x45), (1, None), (200, 0x46)],
                                      [(2, 0), (200, 0x47)]]))
open(sys.argv[2], "wb").write(stream([[(0, 0x45), (1, None), (2, 0), (200, 0x47)]]))
PYEOF
run convert --to mapped "$tmp/rounds.mig" "$tmp/rounds.map"
[ $rc -eq 0 ] || ko "rounds: convert --to mapped: exit $rc: $(cat "$tmp/err")"
run convert --to mapped "$tmp/once.mig" "$tmp/once.map"
[ $rc -eq 0 ] || ko "once: convert --to mapped: exit $rc: $(cat "$tmp/err")"
run verify "$tmp/rounds.map"
[ $rc -eq 0 ] || ko "rounds: verify: exit $rc: $(cat "$tmp/err")"
# Its regions do not grow with the rounds: the same D (bytes 32..39).
[ "$(od -An -tx1 -j32 -N8 "$tmp/rounds.map")" = "$(od -An -tx1 -j32 -N8 "$tmp/once.map")" ] ||
	ko "rounds: the mapped file's regions grow with the rounds"
run extract "$tmp/rounds.ex" "$tmp/rounds.map"
[ $rc -eq 0 ] || ko "rounds: extract: exit $rc: $(cat "$tmp/err")"
python3 - "$tmp/rounds.ex/pc.ram" "$tmp/rounds.map" <<'PYEOF' || ko "rounds: the final pages"
import os, struct, sys
b = open(sys.argv[1], "rb").read()
assert len(b) == 1 << 20
want = {0: 0x45, 1: 0, 2: 0, 200: 0x47}
for i in range(256):
    assert b[i * 4096:(i + 1) * 4096] == bytes([want.get(i, 0)]) * 4096, i
m = open(sys.argv[2], "rb").read()
ent = 4096
np_, bm, cr, pg = 256, *struct.unpack_from(">QQQ", m, ent + 264)
assert m[bm] == 0x07 and m[bm + 25] == 0x01, (m[bm], m[bm + 25])
assert struct.unpack_from(">Q", m, ent + 292)[0] == 4
fd = os.open(sys.argv[2], os.O_RDONLY)
try:
    # Page 1 was written, then zeroed: punched out (where the file
    # system says where its data is).
    if os.lseek(fd, pg + 4096, os.SEEK_DATA) == pg + 4096:
        sys.exit("page 1 holds data: not punched out")
except OSError:
    pass
PYEOF

# Usage errors.
run convert --to mapped "$tmp/pc-min.mig" -
[ $rc -eq 2 ] && grep -q "standard output" "$tmp/err" || ko "convert --to mapped onto stdout: exit $rc: $(cat "$tmp/err")"
run convert --to mapped "$tmp/pc-min.map" "$tmp/x.map"
[ $rc -eq 2 ] || ko "convert --to mapped of a mapped file: exit $rc"

# Hostile files, made from pc-min.map: each refused by verify (exit 1),
# its message naming the offset; convert and extract refuse it too.
python3 - "$tmp/pc-min.map" "$tmp/h" "$dump" <<'PYEOF' || ko "hostile mapped files: see above"
import os, random, struct, subprocess, sys, zlib
src, hd, dump = sys.argv[1:4]
os.mkdir(hd)
base = bytearray(open(src, "rb").read())
be32 = lambda b, o: struct.unpack_from(">I", b, o)[0]
be64 = lambda b, o: struct.unpack_from(">Q", b, o)[0]
nblocks, D, L = be32(base, 20), be64(base, 32), be64(base, 40)
P = be32(base, 16)
ents = [4096 + 512 * i for i in range(nblocks)]
fails = 0

def fix_header(b):
    struct.pack_into(">I", b, 56, zlib.crc32(bytes(b[4096:4096 + 512 * be32(b, 20)])))
    struct.pack_into(">I", b, 60, zlib.crc32(bytes(b[:60])))

def fix_meta(b, e):
    np = be64(b, e + 256) // P
    bm, cr = be64(b, e + 264), be64(b, e + 272)
    meta = bytes(b[bm:bm + (np + 7) // 8]) + bytes(b[cr:cr + 4 * np])
    struct.pack_into(">I", b, e + 288, zlib.crc32(meta))
    fix_header(b)

def case(name, data, off, what=""):
    global fails
    p = os.path.join(hd, name)
    open(p, "wb").write(data)
    r = subprocess.run([dump, "verify", p], capture_output=True, text=True)
    want = "offset 0x%x:" % off
    if r.returncode != 1 or want not in r.stderr or what not in r.stderr:
        print("FAIL: %s: exit %d, '%s' (%s) expected in: %s" %
              (name, r.returncode, want, what, r.stderr.strip()), file=sys.stderr)
        fails += 1
    for cmd in (["convert", "--to", "native", p, p + ".out"],
                ["extract", p + ".dir", p]):
        r = subprocess.run([dump] + cmd, capture_output=True, text=True)
        if r.returncode != 1 or os.path.exists(p + ".out"):
            print("FAIL: %s: %s: exit %d: %s" % (name, cmd[0], r.returncode, r.stderr.strip()),
                  file=sys.stderr)
            fails += 1
    os.unlink(p)

# Truncations at every region boundary, and at random offsets.
cuts = {4, 8, 12, 16, 60, 64, 4095, 4096, 4096 + 512 * nblocks - 1, D, D + 1, D + L - 1}
for e in ents:
    for f in (264, 272, 280):
        o = be64(base, e + f)
        cuts |= {o - 1, o, o + 1}
    cuts.add(be64(base, e + 280) + be64(base, e + 256))
rnd = random.Random(14)
cuts |= {rnd.randrange(1, len(base)) for _ in range(20)}
for c in sorted(cuts):
    case("cut-%x" % c, base[:c], 0 if c < 8 else 8 if c < 12 else 12 if c < 16 else min(c, len(base)))
case("trailing", base + b"\0", len(base), "trailing")

def mut(name, off, what, fn):
    b = bytearray(base)
    fn(b)
    case(name, bytes(b), off, what)

def flip(o):
    return lambda b: b.__setitem__(o, b[o] ^ 0x01)

mut("magic", 0, "magic", flip(3))
mut("version", 8, "version", flip(11))
mut("complete-clear", 12, "incomplete", flip(15))
mut("header-crc", 60, "header_crc", flip(17))
mut("header-tail", 0x40, "zero", lambda b: (b.__setitem__(0x40, 1), fix_header(b)))
mut("flags", 12, "unknown", lambda b: (b.__setitem__(14, 2), fix_header(b)))
mut("page-size", 16, "page size", lambda b: (struct.pack_into(">I", b, 16, 3000), fix_header(b)))
mut("nblocks-1025", 20, "blocks", lambda b: (struct.pack_into(">I", b, 20, 1025), fix_header(b)))
mut("align", 24, "align", lambda b: (struct.pack_into(">Q", b, 24, 1 << 21), fix_header(b)))
mut("file-size", be64(base, 48) - 4096, "file_size",
    lambda b: (struct.pack_into(">Q", b, 48, be64(b, 48) - 4096), fix_header(b)))
mut("table", 4096, "table_crc", flip(ents[1] + 5))
mut("idlen-0", ents[2], "idlen", lambda b: (b.__setitem__(ents[2], 0), fix_header(b)))
mut("name-pad", ents[0], "padding", lambda b: (b.__setitem__(ents[0] + 200, 7), fix_header(b)))
mut("entry-tail", ents[0], "zero", lambda b: (b.__setitem__(ents[0] + 400, 7), fix_header(b)))
mut("dup-name", ents[1], "distinct",
    lambda b: (b.__setitem__(slice(ents[1], ents[1] + 256), b[ents[0]:ents[0] + 256]), fix_header(b)))
for v in (1 << 32, 1 << 63, (1 << 64) - 4096, 4097):
    mut("used-%x" % v, ents[0] + 256, "used_length",
        lambda b, v=v: (struct.pack_into(">Q", b, ents[0] + 256, v), fix_header(b)))
mut("bitmap-unaligned", ents[1] + 264, "4096",
    lambda b: (struct.pack_into(">Q", b, ents[1] + 264, be64(b, ents[1] + 264) + 8), fix_header(b)))
mut("pages-unaligned", ents[1] + 264, "0x100000",
    lambda b: (struct.pack_into(">Q", b, ents[1] + 280, be64(b, ents[1] + 280) + 4096), fix_header(b)))
mut("overlap", ents[1] + 264, "overlap",
    lambda b: (struct.pack_into(">Q", b, ents[1] + 264, be64(b, ents[0] + 280)), fix_header(b)))
mut("past-D", ents[5] + 264, "below the device stream",
    lambda b: (struct.pack_into(">Q", b, 32, D - (1 << 20)),
               struct.pack_into(">Q", b, 40, L + (1 << 20)), fix_header(b)))
mut("D-unaligned", 32, "dev_offset",
    lambda b: (struct.pack_into(">Q", b, 32, D + 4096), struct.pack_into(">Q", b, 40, L - 4096), fix_header(b)))
mut("D+L", 32, "dev_length", lambda b: (struct.pack_into(">Q", b, 40, L + 1), fix_header(b)))
mut("L-2^63", 32, "dev_length", lambda b: (struct.pack_into(">Q", b, 40, 1 << 63), fix_header(b)))
# Bitmaps, checksum tables, pages.
e = ents[2]  # pc.bios: pages that are not zero
bm, cr, pg = be64(base, e + 264), be64(base, e + 272), be64(base, e + 280)
mut("bitmap", bm, "meta_crc", flip(bm))
mut("bitmap-fixed", bm, "present", lambda b: (b.__setitem__(bm, b[bm] ^ 1), fix_meta(b, e)))
e5 = ents[5]
bm5 = be64(base, e5 + 264)
mut("bitmap-past-end", bm5, "past", lambda b: (b.__setitem__(bm5, 3), fix_meta(b, e5)))
mut("crc-table", bm, "meta_crc", flip(cr + 2))
# A page whose CRC is not the table's: the first page that is not zero.
z = zlib.crc32(bytes(P))
k = next(i for i in range(64) if be32(base, cr + 4 * i) != z)
mut("crc-entry-fixed", pg + k * P, "CRC-32", lambda b: (b.__setitem__(cr + 4 * k + 3, b[cr + 4 * k + 3] ^ 1), fix_meta(b, e)))
mut("page", pg + k * P, "CRC-32", flip(pg + k * P + 100))
kz = next(i for i in range(64) if be32(base, cr + 4 * i) == z)
mut("zero-page", pg + kz * P, "CRC-32", flip(pg + kz * P + 7))
# A page not saved whose checksum is not 0: the last block has one page;
# clear its bit, keep its checksum.
mut("absent-crc", be64(base, e5 + 272), "not saved",
    lambda b: (b.__setitem__(be64(b, e5 + 264), 0), struct.pack_into(">Q", b, e5 + 292, 0), fix_meta(b, e5)))
# The device stream: a flipped byte in a record (its CRC), its header.
for o in (D + 2, D + 0x40, D + L // 2, D + L - 3):
    b = bytearray(base)
    b[o] ^= 0x10
    p = os.path.join(hd, "dev")
    open(p, "wb").write(b)
    r = subprocess.run([dump, "verify", p], capture_output=True, text=True)
    import re
    m = re.search(r"offset 0x([0-9a-f]+): device stream", r.stderr)
    if r.returncode != 1 or not m or int(m.group(1), 16) < D:
        print("FAIL: device byte 0x%x flipped: exit %d: %s" % (o, r.returncode, r.stderr.strip()),
              file=sys.stderr)
        fails += 1
sys.exit(1 if fails else 0)
PYEOF

exit $fail
