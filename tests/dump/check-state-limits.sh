#!/bin/sh
# migstream-dump state and desc under their caps, with generated inputs
# too big to keep as test data: a 60 MiB VM description (about 2 GiB once
# parsed without a cap) is refused under --max-memory with a peak RSS
# under 256 MiB, measured by getrusage() on the child; a description that
# fits parses within it; zero-size values and long names from a few
# hundred bytes of stream stop at --max-values and --max-output with the
# output written no larger than the cap.  RSS checks are skipped in
# sanitizer builds (the shadow memory counts) and under valgrind.
set -u
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap dump
command -v python3 >/dev/null 2>&1 || { echo "no python3: skipped"; exit 77; }
rss=1
case "${SAN_FLAGS:-}" in
*sanitize*) rss= ;;
esac
[ -n "${MS_UNDER_VALGRIND:-}" ] && rss=
if [ -n "${MS_RUN_WRAPPER:-}" ]; then
	# The emulator's own memory would be counted with the tool's.
	echo "under $MS_RUN_WRAPPER: the peak RSS bounds are not checked"
	rss=
fi
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

# Streams: header, FULL sections, EOF and the trailer.
python3 - "$tmp" <<'PYEOF' || exit 99
import json, struct, sys
d = sys.argv[1]
def stream(body, desc):
    js = json.dumps(desc).encode()
    return b"QEVM" + struct.pack(">I", 3) + body + b"\x00\x06" + struct.pack(">I", len(js)) + js
def full(sid, name, inst):
    return (b"\x04" + struct.pack(">I", sid) + bytes([len(name)]) + name +
            struct.pack(">II", inst, 1) + b"\x7e" + struct.pack(">I", sid))
dev = lambda n, f, i=0: {"name": n, "instance_id": i, "vmsd_name": n, "version": 1, "fields": f}
u8 = {"name": "a", "type": "uint8", "size": 1}
# 60 MiB of small devices.
n = 60 * 1024 * 1024 // 135
big = {"page_size": 4096, "devices": [dev("d%07d" % i, [u8]) for i in range(n)]}
open(d + "/big.mig", "wb").write(stream(b"", big))
# 6 MiB: parsed within the default cap.
mid = {"page_size": 4096, "devices": [dev("d%07d" % i, [u8]) for i in range(n // 10)]}
open(d + "/mid.mig", "wb").write(stream(b"", mid))
# 8 sections of 1 million zero-size values each.
z = {"name": "z", "type": "buffer", "size": 0, "array_len": 1000000}
body = b"".join(full(i, b"d", i) for i in range(1, 9))
open(d + "/zero.mig", "wb").write(stream(body, {"page_size": 4096, "devices": [dev("d", [z], i) for i in range(1, 9)]}))
# 4 sections each printing a 20 KB name 4000 times (80 MB each).
st = {"name": "s", "type": "struct", "size": 0, "array_len": 4000,
      "struct": {"vmsd_name": "x", "version": 1, "fields": [{"name": "n" * 20000, "type": "buffer", "size": 0}]}}
body = b"".join(full(i, b"d", i) for i in range(1, 5))
open(d + "/names.mig", "wb").write(stream(body, {"page_size": 4096, "devices": [dev("d", [st], i) for i in range(1, 5)]}))
PYEOF

# Run the tool; $rc its status, $kib its peak RSS, $bytes what it wrote.
run() {
	set -- $(python3 - "$dump" "$tmp/out" "$tmp/err" "$@" <<'PYEOF'
import resource, subprocess, sys
dump, out, err = sys.argv[1:4]
with open(out, "wb") as o, open(err, "wb") as e:
    rc = subprocess.call([dump] + sys.argv[4:], stdout=o, stderr=e)
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PYEOF
	)
	rc=$1
	kib=$2
	bytes=$(wc -c <"$tmp/out")
	if [ "$rc" -gt 3 ] || [ "$rc" -lt 0 ] || grep -q 'Sanitizer\|runtime error' "$tmp/err"; then
		ko "exit $rc: $(head -c 500 "$tmp/err")"
	fi
}
limit=$((256 * 1024))

# state parses the description before its walk (--max-memory); desc and
# verify meet it in the walk (--json-mem-max): both caps are 128 MiB.
for c in state desc verify; do
	run $c "$tmp/big.mig"
	[ "$rc" -eq 1 ] && grep -qE "VM description: its [0-9]* bytes of JSON need more than 134217728 bytes of memory parsed \(the cap, set by --max-memory\)|parsing it needs more than 134217728 bytes of memory \(--json-mem-max\)" "$tmp/err" ||
		ko "$c of a 60 MiB description: exit $rc: $(head -c 300 "$tmp/err")"
	echo "$c, 60 MiB description: status $rc, peak RSS $kib KiB"
	[ -z "$rss" ] || [ "$kib" -lt $limit ] || ko "$c big: peak RSS $kib KiB, under $limit expected"
	run $c "$tmp/mid.mig"
	[ "$rc" -eq 0 ] || ko "$c of a 6 MiB description: exit $rc: $(head -c 300 "$tmp/err")"
	echo "$c, 6 MiB description: status $rc, peak RSS $kib KiB"
	[ -z "$rss" ] || [ "$kib" -lt $limit ] || ko "$c mid: peak RSS $kib KiB, under $limit expected"
done
# A larger cap lets it parse, and the RSS follows the cap.
run state --max-memory 4G "$tmp/mid.mig"
[ "$rc" -eq 0 ] || ko "state --max-memory 4G: exit $rc: $(cat "$tmp/err")"

# 8 million values from 600 bytes: the default cap of 4Mi values.
run state "$tmp/zero.mig"
[ "$rc" -eq 1 ] && grep -q "more than 4194304 values decoded in the stream (the cap, set by --max-values)" "$tmp/err" ||
	ko "state of 8M zero-size values: exit $rc: $(head -c 300 "$tmp/err")"
echo "state, 8M zero-size values: status $rc, $bytes bytes written"
[ -z "$rss" ] || [ "$kib" -lt $limit ] || ko "state zero: peak RSS $kib KiB"
run state --max-values 9000000 "$tmp/zero.mig"
[ "$rc" -eq 0 ] || ko "state --max-values 9000000: exit $rc: $(head -c 300 "$tmp/err")"

# 320 MB of names from 700 bytes: stopped at the default --max-output
# (256 MiB plus 16 a byte of input), having written no more.
run state "$tmp/names.mig"
[ "$rc" -eq 1 ] && grep -q "(the cap, set by --max-output, is 268435456 bytes plus 16 a byte of input)" "$tmp/err" ||
	ko "state of long names: exit $rc: $(head -c 300 "$tmp/err")"
echo "state, 320 MB of names: status $rc, $bytes bytes written"
[ "$bytes" -le $((268435456 + 16 * 2000)) ] || ko "state of long names wrote $bytes bytes"
[ -z "$rss" ] || [ "$kib" -lt $limit ] || ko "state names: peak RSS $kib KiB"
run state --max-output 1G "$tmp/names.mig"
[ "$rc" -eq 0 ] || ko "state --max-output 1G: exit $rc: $(head -c 300 "$tmp/err")"

[ $fail -eq 0 ] && echo "ok: state within its caps"
exit $fail
