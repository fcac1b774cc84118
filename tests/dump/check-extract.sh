#!/bin/sh
# migstream-dump extract: no two RAM blocks share a file, whatever their
# names (long names whose CRC-32 collide, many names with one long
# prefix), an existing file is never reopened, and --max-bytes bounds the
# apparent size of the block files.  The streams come from
# tests/data/gen/ramstream.py.
set -u
. "${top_srcdir:-.}/tests/lib/dump-test-lib.sh"

# Each block file of DIR holds its own page: "DIR BYTE..." in list order
# of the names (python3 checks, by the content of each file).
check_pages() {
	python3 - "$@" <<'PYEOF'
import os, sys
d, want = sys.argv[1], sorted(int(b, 0) for b in sys.argv[2:])
got = []
for f in os.listdir(d):
    if f in ("desc.json", "state.json"):
        continue
    b = open(os.path.join(d, f), "rb").read()
    if len(b) != 4096 or len(set(b)) != 1:
        sys.exit("%s: one page of one byte expected" % f)
    got.append(b[0])
if sorted(got) != want:
    sys.exit("pages %s, %s expected" % (sorted(got), want))
PYEOF
}

# Two 255-byte names with one CRC-32: two files, each with its page.
python3 "$gen/ramstream.py" --collide "$tmp/col.mig" >"$tmp/names" || exit 99
run extract "$tmp/col" "$tmp/col.mig"
[ $rc -eq 0 ] || ko "extract colliding names: exit $rc: $(cat "$tmp/err")"
n=$(find "$tmp/col" -type f | wc -l)
[ "$n" -eq 4 ] || ko "extract colliding names: $n files, 4 expected (2 blocks, desc.json, state.json)"
check_pages "$tmp/col" 0x41 0x42 || ko "extract colliding names: a block lost"

# 40 names of 255 bytes with a common 250-byte prefix.
set --
i=0
while [ $i -lt 40 ]; do
	set -- "$@" "$(printf 'p%.0s' $(seq 250))$(printf '%05d' $i):0x1000:$((i + 1))"
	i=$((i + 1))
done
python3 "$gen/ramstream.py" "$tmp/many.mig" "$@" || exit 99
run extract "$tmp/many" "$tmp/many.mig"
[ $rc -eq 0 ] || ko "extract 40 long names: exit $rc: $(cat "$tmp/err")"
check_pages "$tmp/many" $(seq 1 40) || ko "extract 40 long names"
ls "$tmp/many" | awk 'length($0) > 255 { exit 1 }' || ko "extract: a file name over 255 bytes"

# A name that looks like a cut name keeps its own file.
python3 "$gen/ramstream.py" "$tmp/look.mig" "$(printf 'q%.0s' $(seq 250))00001:0x1000:1" \
	"$(printf 'q%.0s' $(seq 200))~1:0x1000:2" "~1:0x1000:3" || exit 99
run extract "$tmp/look" "$tmp/look.mig"
[ $rc -eq 0 ] || ko "extract cut-like names: exit $rc: $(cat "$tmp/err")"
check_pages "$tmp/look" 1 2 3 || ko "extract cut-like names"

# An existing file in DIR is not reopened: status 3, the file unchanged.
python3 "$gen/ramstream.py" "$tmp/two.mig" "a:0x1000:1" "b:0x1000:2" || exit 99
mkdir "$tmp/ex" && echo keep >"$tmp/ex/b"
run extract "$tmp/ex" "$tmp/two.mig"
[ $rc -eq 3 ] || ko "extract over an existing file: exit $rc, 3 expected"
grep -q "b: exists already (RAM block 'b')" "$tmp/err" ||
	ko "extract over an existing file: $(cat "$tmp/err")"
[ "$(cat "$tmp/ex/b")" = keep ] || ko "extract over an existing file: it was changed"

# --max-bytes: the block sizes together, at the limit and one byte over.
run extract --max-bytes=8K "$tmp/lim" "$tmp/two.mig"
[ $rc -eq 0 ] || ko "extract --max-bytes=8K, 8 KiB of blocks: exit $rc: $(cat "$tmp/err")"
run extract --max-bytes=8191 "$tmp/over" "$tmp/two.mig"
[ $rc -eq 1 ] || ko "extract --max-bytes=8191, 8 KiB of blocks: exit $rc, 1 expected"
grep -q "offset 0x[0-9a-f]*: section 1 'ram': block list: RAM block 1 'b' of 0x1000 bytes after 0x1000: block files of at most 8191 bytes in all expected (--max-bytes)" "$tmp/err" ||
	ko "extract --max-bytes=8191: $(cat "$tmp/err")"
[ -z "$(ls "$tmp/over")" ] || ko "extract over --max-bytes: files made: $(ls "$tmp/over")"

# 4096 blocks of 1 GiB (4 TiB) from a small stream: over the default.
i=0
: >"$tmp/big.args"
while [ $i -lt 4096 ]; do
	echo "b$i:0x40000000" >>"$tmp/big.args"
	i=$((i + 1))
done
# shellcheck disable=SC2046
python3 "$gen/ramstream.py" "$tmp/big.mig" $(cat "$tmp/big.args") || exit 99
run extract "$tmp/big" "$tmp/big.mig"
[ $rc -eq 1 ] || ko "extract 4096 blocks of 1 GiB: exit $rc, 1 expected"
grep -q "RAM block 1024 'b1024' of 0x40000000 bytes after 0x10000000000: block files of at most 1099511627776 bytes in all expected (--max-bytes)" "$tmp/err" ||
	ko "extract 4096 blocks of 1 GiB: $(cat "$tmp/err")"
[ -z "$(ls "$tmp/big")" ] || ko "extract 4096 blocks of 1 GiB: files made"
exit $fail
