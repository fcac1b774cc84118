#!/bin/sh
# migstream-dump on every QEMU 7.2 capture of tests/data/qemu/captures.list
# (pc and q35 with devices, a running guest, compressed pages, no
# trailer): info --json and sections against the expected outputs checked
# in next to them, verify, state against analyze-migration.py's output
# where it can read the stream, state -m against the extracted blocks,
# extract's state.json and desc.json, the convert round trip byte for
# byte (plain and compressed native copies), qemu-reencode (the library's
# reader and writer) giving the same bytes, and the progress line: none
# when stderr is not a terminal, one when it is.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
reenc="$bld/tests/qemu/qemu-reencode"
data="$src/tests/data/qemu"
command -v python3 >/dev/null 2>&1 || { echo "no python3: skipped"; exit 77; }
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
[ -x "$reenc" ] || { echo "$reenc not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap dump reenc
ms_sanitizer_exit
# Under valgrind (make check-valgrind) the tool runs under it too.
wrap=${MS_REPLAY_WRAPPER:-}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

# Run the tool; $rc gets its status, $tmp/out and $tmp/err its output.
run() {
	# shellcheck disable=SC2086
	$wrap "$dump" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -gt 3 ] || grep -q 'Sanitizer\|runtime error' "$tmp/err"; then
		ko "migstream-dump $* exited $rc: $(cat "$tmp/err")"
	fi
}

# JSON-equal, after dropping the top-level keys named after the files.
json_equal() {
	python3 - "$@" <<'EOF'
import gzip, json, sys
def load(f):
    return json.load(gzip.open(f, "rt") if f.endswith(".gz") else open(f))
a, b = load(sys.argv[1]), load(sys.argv[2])
for k in sys.argv[3:]:
    a.pop(k, None)
    b.pop(k, None)
sys.exit(a != b)
EOF
}

names=$(grep -v '^#' "$data/captures.list" | cut -d'|' -f1)
for n in $names; do
	gzip -dc "$data/$n.mig.gz" >"$tmp/$n.mig" || exit 99
	f="$tmp/$n.mig"

	# info --json and sections: as checked in.
	run info --json "$f"
	[ $rc -eq 0 ] || ko "info $n: exit $rc: $(cat "$tmp/err")"
	json_equal "$tmp/out" "$data/$n.info.json" file ||
		ko "info --json $n differs from tests/data/qemu/$n.info.json"
	run sections "$f"
	[ $rc -eq 0 ] || ko "sections $n: exit $rc: $(cat "$tmp/err")"
	cmp -s "$tmp/out" "$data/$n.sections" ||
		ko "sections $n differs: $(diff "$data/$n.sections" "$tmp/out" | head -5)"
	run verify "$f"
	[ $rc -eq 0 ] || ko "verify $n: exit $rc: $(cat "$tmp/err")"

	# state: as analyze-migration.py -d state prints it.
	if [ -e "$data/$n.state.json.gz" ]; then
		run state "$f"
		[ $rc -eq 0 ] || ko "state $n: exit $rc: $(cat "$tmp/err")"
		json_equal "$tmp/out" "$data/$n.state.json.gz" ||
			ko "state $n differs from tests/data/qemu/$n.state.json.gz"
	fi

	# convert: QEMU -> native (plain, compressed) -> QEMU, the same bytes.
	for c in "" "--compress=6"; do
		# shellcheck disable=SC2086
		run convert --to native $c "$f" "$tmp/$n.msn"
		[ $rc -eq 0 ] || ko "convert $n to native $c: exit $rc: $(cat "$tmp/err")"
		run verify -q "$tmp/$n.msn"
		[ $rc -eq 0 ] || ko "verify native $n $c: $(cat "$tmp/err")"
		run convert --to qemu "$tmp/$n.msn" "$tmp/$n.back"
		[ $rc -eq 0 ] || ko "convert $n back $c: exit $rc: $(cat "$tmp/err")"
		cmp -s "$f" "$tmp/$n.back" || ko "convert $n $c: QEMU -> native -> QEMU differs"
	done

	# The library's reader and writer, record by record: the same bytes
	# (qemu-reencode reads with footers: not the nf- captures).
	case $n in
	nf-*) ;;
	*)
		$wrap "$reenc" "$f" "$tmp/$n.re" 2>"$tmp/err" ||
			ko "qemu-reencode $n: $(cat "$tmp/err")"
		cmp -s "$f" "$tmp/$n.re" || ko "qemu-reencode $n: not the same bytes"
		;;
	esac
	rm -f "$tmp/$n.msn" "$tmp/$n.back" "$tmp/$n.re"
done

# Compressed pages: counted, and inflated by extract like normal ones.
grep -q '"compressed": 107' "$data/pc-compress.info.json" ||
	ko "pc-compress.info.json: 107 compressed pages expected"

# No trailer: info and verify say where the stream ends; state and desc
# cannot decode it (status 1, the offset), extract writes the blocks.
run info "$tmp/pc-novmdesc.mig"
grep -q "^vmdesc: *none (the stream ends after its EOF byte, at offset 0x3d7d7)" "$tmp/out" ||
	ko "info without a trailer: $(grep vmdesc "$tmp/out")"
run verify "$tmp/pc-novmdesc.mig"
[ $rc -eq 0 ] && grep -q "no VM description trailer after EOF" "$tmp/out" ||
	ko "verify without a trailer: $(cat "$tmp/out" "$tmp/err")"
for c in state desc; do
	run $c "$tmp/pc-novmdesc.mig"
	[ $rc -eq 1 ] && grep -q "offset 0x3d7d7: no VM description (vmdesc) trailer" "$tmp/err" ||
		ko "$c without a trailer: exit $rc: $(cat "$tmp/err")"
done
run extract "$tmp/ex-nv" "$tmp/pc-novmdesc.mig"
[ $rc -eq 0 ] && [ -e "$tmp/ex-nv/pc.ram" ] && [ ! -e "$tmp/ex-nv/state.json" ] &&
	grep -q "desc.json and state.json not written" "$tmp/err" ||
	ko "extract without a trailer: exit $rc: $(cat "$tmp/err")"
# With the description of the same machine, state decodes it.
run desc "$tmp/pc-min.mig"
cp "$tmp/out" "$tmp/pc-min.desc"
run state --desc "$tmp/pc-min.desc" "$tmp/pc-novmdesc.mig"
[ $rc -eq 0 ] || ko "state --desc of pc-novmdesc: exit $rc: $(cat "$tmp/err")"

# extract: state.json is what state prints, desc.json what desc reads;
# from a pipe too.  state -m: every page, as in the extracted blocks.
for n in pc-dev q35-run pc-compress nf-min pc-block; do
	rm -rf "$tmp/ex"
	if [ $n = q35-run ]; then
		$wrap "$dump" extract "$tmp/ex" - <"$tmp/$n.mig" 2>"$tmp/err"
		rc=$?
	else
		run extract "$tmp/ex" "$tmp/$n.mig"
	fi
	[ $rc -eq 0 ] || ko "extract $n: exit $rc: $(cat "$tmp/err")"
	run state "$tmp/$n.mig"
	cp "$tmp/out" "$tmp/state.json"
	json_equal "$tmp/ex/state.json" "$tmp/state.json" ||
		ko "extract $n: state.json is not what state prints"
	run state --desc "$tmp/ex/desc.json" "$tmp/$n.mig"
	json_equal "$tmp/out" "$tmp/state.json" ||
		ko "extract $n: desc.json does not decode the stream"
	run state -m "$tmp/$n.mig"
	[ $rc -eq 0 ] || ko "state -m $n: exit $rc: $(cat "$tmp/err")"
	python3 - "$tmp/out" "$tmp/state.json" "$tmp/ex" "$data/$n.info.json" <<'EOF' ||
import json, os, sys
out, ref, d, info = sys.argv[1:5]
doc = json.load(open(out))
info = json.load(open(info))
ram = doc["ram (2)"]
mem = ram.pop("memory")
bad = 0
if doc != json.load(open(ref)):
    print("state -m without its memory is not state"); bad = 1
if len(mem) != sum(info["ram"]["pages"].values()):
    print("%d memory entries, %d pages" % (len(mem), sum(info["ram"]["pages"].values()))); bad = 1
def safe(n):
    return "".join(c if c.isalnum() or c in "_-+,=@:" or (c == "." and i)
                   else "%%%02X" % ord(c) for i, c in enumerate(n))
files = {}
for key, v in mem.items():
    name, addr = key.rsplit(" (", 1)
    addr = int(addr.rstrip(")"), 16)
    if name not in files:
        files[name] = open(os.path.join(d, safe(name)), "rb")
    f = files[name]
    f.seek(addr)
    page = f.read(4096)
    want = bytes(4096) if v == "Filled with 0x00" else bytes.fromhex(v.replace(" ", ""))
    if page != want:
        print("%s: not the extracted page" % key); bad = 1
        break
sys.exit(bad)
EOF
		ko "state -m $n: the pages are not those of the stream"
done
# Without footers (machine type 2.3): info says so, the sections are
# delimited by the trailer that ends the file, and the walk must reach it.
run info "$tmp/nf-min.mig"
grep -q "^footers: *none (QEMU before 2.4)" "$tmp/out" ||
	ko "info without footers: $(cat "$tmp/out")"
run desc "$tmp/nf-min.mig"
cp "$tmp/out" "$tmp/nf-min.desc"
run state --desc "$tmp/nf-min.desc" "$tmp/nf-min.mig"
json_equal "$tmp/out" "$data/nf-min.state.json.gz" || ko "state --desc of nf-min differs"
# A trailer that does not describe the stream: one field 2 bytes short.
python3 - "$tmp/nf-min.mig" "$tmp/nf-bad.mig" <<'EOF' || exit 99
import sys
d = open(sys.argv[1], "rb").read()
i = d.rindex(b"\x00\x06")
t = d[i:].replace(b'"type": "uint32", "size": 4', b'"type": "uint32", "size": 2', 1)
assert t != d[i:]
open(sys.argv[2], "wb").write(d[:i] + t)
EOF
for c in verify info state sections convert extract; do
	case $c in
	convert) run convert --to native "$tmp/nf-bad.mig" "$tmp/nf-bad.msn" ;;
	extract) run extract "$tmp/ex-bad" "$tmp/nf-bad.mig" ;;
	*) run $c "$tmp/nf-bad.mig" ;;
	esac
	[ $rc -eq 1 ] || ko "$c with a wrong trailer and no footers: exit $rc: $(cat "$tmp/err")"
done
# Two footerless captures joined: the first one's trailer is not the one
# that ends the file, which the walk must reach.
cat "$tmp/nf-min.mig" "$tmp/nf-run.mig" >"$tmp/nf-cat.mig"
for c in verify state; do
	run $c "$tmp/nf-cat.mig"
	[ $rc -eq 1 ] || ko "$c of two footerless captures joined: exit $rc: $(cat "$tmp/err")"
done
# From a pipe, footers cannot be looked for: refused, not misread; extract
# spools a pipe, so it can.
cat "$tmp/nf-min.mig" | $wrap "$dump" verify - >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "before 2.4, .* can be read from a regular file only, not from a pipe" "$tmp/err" ||
	ko "verify - of a footerless stream from a pipe: $(cat "$tmp/err")"
cat "$tmp/nf-run.mig" | $wrap "$dump" extract "$tmp/ex-nf" - >"$tmp/out" 2>"$tmp/err" &&
	json_equal "$tmp/ex-nf/state.json" "$data/nf-run.state.json.gz" ||
	ko "extract - of a footerless stream: $(cat "$tmp/err")"

# Iterative sections the description lacks (block migration, dirty
# bitmaps): opaque, with their byte count, and the rest decoded.
for n in pc-block pc-dbitmap; do
	run state "$tmp/$n.mig"
	[ $rc -eq 0 ] && grep -q "1 section not in the VM description, shown as opaque" "$tmp/err" ||
		ko "state $n: exit $rc: $(cat "$tmp/err")"
done
python3 - "$data/pc-block.state.json.gz" "$data/pc-dbitmap.state.json.gz" "$data/pc-block.sections" <<'EOF' ||
import gzip, json, sys
b = json.load(gzip.open(sys.argv[1], "rt"))["block (1)"]
d = json.load(gzip.open(sys.argv[2], "rt"))["dirty-bitmap (3)"]
# The payload bytes of block's START, PARTs and END, from the sections.
n = sum(int(l.split()[-1]) for l in open(sys.argv[3]) if l.split()[3:4] == ["block"])
ok = (b["opaque"] == d["opaque"] == "not in the VM description" and b["records"] == 4 and
      b["bytes"] == n and b["ended"] and d["records"] == 3 and d["version_id"] == 1)
sys.exit(not ok)
EOF
	ko "state: the opaque sections are not as expected"

# -m from a pipe, with --desc: streamed as well.
$wrap "$dump" state -m --desc "$tmp/pc-min.desc" - <"$tmp/pc-min.mig" >"$tmp/out" 2>"$tmp/err" ||
	ko "state -m --desc - <pc-min: $(cat "$tmp/err")"
python3 -c 'import json, sys; sys.exit(len(json.load(open(sys.argv[1]))["ram (2)"]["memory"]) != 4226)' "$tmp/out" ||
	ko "state -m from a pipe: 4226 pages expected"
# A cut stream: status 1 with an offset, after the pages read so far.
head -c 100000 "$tmp/pc-min.mig" >"$tmp/cut.mig"
run state -m --desc "$tmp/pc-min.desc" "$tmp/cut.mig"
[ $rc -eq 1 ] && grep -q "^migstream-dump: .*: offset 0x[0-9a-f]*: section 2 'ram': page data" "$tmp/err" ||
	ko "state -m of a cut stream: exit $rc: $(cat "$tmp/err")"
run state --bogus "$tmp/pc-min.mig"
[ $rc -eq 2 ] || ko "state --bogus: exit $rc, 2 expected"

# Progress: nothing when stderr is not a terminal, even with no delay.
MIGSTREAM_DUMP_PROGRESS_MS=0 $wrap "$dump" verify -q "$tmp/q35-dev.mig" 2>"$tmp/err" >/dev/null ||
	ko "verify q35-dev with progress"
[ -s "$tmp/err" ] && ko "progress printed to a file: $(cat "$tmp/err")"
# With a terminal (script(1), when it is there): a line, then erased.
if [ -z "$wrap" ] && command -v script >/dev/null 2>&1 &&
	script -qec true /dev/null >/dev/null 2>&1; then
	MIGSTREAM_DUMP_PROGRESS_MS=0 script -qec "'$dump' verify -q '$tmp/q35-dev.mig'" /dev/null \
		</dev/null >"$tmp/tty" 2>&1 || ko "verify under script: $(cat "$tmp/tty")"
	grep -q "q35-dev.mig: [0-9.]* MiB of 1[0-9.]* MiB ([0-9]*%)" "$tmp/tty" ||
		ko "no progress line on a terminal: $(head -c 300 "$tmp/tty")"
	# Nothing before the first delay has passed (here an hour).
	MIGSTREAM_DUMP_PROGRESS_MS=3600000 script -qec "'$dump' verify -q '$tmp/pc-min.mig'" \
		/dev/null </dev/null >"$tmp/tty" 2>&1
	grep -q "MiB" "$tmp/tty" && ko "progress before its delay: $(head -c 300 "$tmp/tty")"
else
	echo "no script(1): the terminal case is not tested"
fi

[ $fail -eq 0 ] && echo "ok: migstream-dump on $(echo $names | wc -w) QEMU captures"
exit $fail
