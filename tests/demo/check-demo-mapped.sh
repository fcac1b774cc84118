#!/bin/sh
# examples/migrate-demo with mapped snapshot files, real processes and
# files: a save with a running guest and 4 precopy rounds restored in mmap
# and read mode (every byte checked by the demo), the file no larger than
# the RAM plus the device state plus the layout's metadata, each kind of
# file refused by the other kind of restore, saves killed by SIGKILL in a
# precopy round (refused as incomplete) and at random moments (refused
# as incomplete, or restored right when the kill came after the commit),
# a RAM of the wrong size refused, and the usage errors of --mapped and
# --kill-in-round.
set -u
bld="${top_builddir:-.}"
demo="$bld/examples/migrate-demo"
[ -x "$demo" ] || { echo "$demo not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap demo
ms_sanitizer_exit
tmp=$(mktemp -d) || exit 99
bg=""
cleanup() {
	[ -n "$bg" ] && kill -9 "$bg" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

wrap=""
if [ "${MS_UNDER_VALGRIND:-}" = 1 ]; then
	wrap="${MS_REPLAY_WRAPPER:-}"
	ram=4M ram_bytes=4194304
	machine="--ram 4M --vdev-size 64k"
	kill_ram=4M
	kills=2
else
	ram=16M ram_bytes=16777216
	machine="--ram 16M --vdev-size 256k"
	kill_ram=64M
	kills=6
fi

# demo NAME ARGS...: run in the foreground; $rc, $tmp/NAME.out, .err.
demo() {
	name=$1
	shift
	# shellcheck disable=SC2086
	$wrap "$demo" $machine "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
	if [ $rc -gt 2 ] || grep -q 'Sanitizer\|runtime error\|==[0-9]*==' "$tmp/$name.err"; then
		ko "$name: migrate-demo $* exited $rc: $(cat "$tmp/$name.err")"
	fi
}
# expect NAME RC TEXT: the last run exited RC and said TEXT (out or err).
expect() {
	[ "$rc" = "$2" ] || ko "$1: exit $rc, expected $2: $(cat "$tmp/$1.err")"
	grep -qF -- "$3" "$tmp/$1.out" "$tmp/$1.err" ||
		ko "$1: '$3' expected: $(cat "$tmp/$1.out" "$tmp/$1.err")"
}
# be64 FILE OFFSET: the big-endian 64-bit number at OFFSET, in decimal.
be64() {
	od -An -tu1 -j"$2" -N8 "$1" |
		awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { printf "%.0f\n", v }'
}

# A running guest, exactly 4 precopy rounds, 2 writer threads.
snap="$tmp/vm.msm"
demo save --to "file:$snap" --mapped --threads 2 --dirty-rate 1000000 \
	--min-rounds 4 --max-rounds 4
expect save 0 "4 precopy rounds"
grep -q "round 4:" "$tmp/save.out" || ko "save: no 4th round"
demo mmap --from "file:$snap" --mapped --restore mmap
expect mmap 0 "verified: "
expect mmap 0 "guest may run after"
demo read --from "file:$snap" --mapped --restore read --threads 2
expect read 0 "verified: "
expect read 0 "read mode"

# The size: the RAM (each page at its one place, whatever the rounds)
# plus the device state (D, L at 32 and 40) plus the metadata (the first
# 1 MiB: header and table; each block's bitmap and CRC table, 1 MiB
# aligned).  The holes (zero pages) are not allocated.
size=$(stat -c %s "$snap")
alloc=$(($(stat -c %b "$snap") * $(stat -c %B "$snap")))
dlen=$(be64 "$snap" 40)
limit=$((ram_bytes + dlen + 3 * 1048576))
[ "$size" -le "$limit" ] ||
	ko "size: $size bytes > RAM $ram_bytes + device state $dlen + 3 MiB"
[ "$alloc" -lt "$size" ] || ko "size: $alloc bytes allocated of $size: no holes"
echo "mapped file after 4 rounds: $size bytes, $alloc allocated, device state $dlen"

# Each kind of restore refuses the other kind of file, saying why.
demo stream-of-mapped --from "file:$snap"
expect stream-of-mapped 1 "not a migration stream"
demo plain --to "file:$tmp/vm.snap"
expect plain 0 "summary: migrated"
demo mapped-of-stream --from "file:$tmp/vm.snap" --mapped
expect mapped-of-stream 1 "not a mapped snapshot"

# A RAM of another size is refused, naming both.
demo wrong-ram --from "file:$snap" --mapped --ram 8M
expect wrong-ram 1 "used length"

# Saves killed mid-way.  An odd-numbered save kills itself once its
# precopy round R (1 to 20 of 30) is sent (--kill-in-round): before the
# commit, so both restores must refuse the file as incomplete.  An
# even-numbered one is killed at a random moment up to 1 s after its file
# appears: the file is refused as incomplete, or (the kill came after the
# commit) restored right.  (Random moments alone can all miss the save: a
# guest starved of CPU dirties little, and the 30 rounds end early.)
i=0
refused=0
while [ $i -lt $kills ]; do
	i=$((i + 1))
	k="$tmp/kill$i.msm"
	r=$(($(od -An -tu2 -N2 /dev/urandom) % 20 + 1))
	inround=""
	[ $((i % 2)) = 1 ] && inround="--kill-in-round $r"
	# The save of 30 rounds that is killed (word-split: $tmp has no
	# spaces).  In the background, a simple command: $! is its process.
	save="$machine --ram $kill_ram --to file:$k --mapped --dirty-rate 1000000 --min-rounds 30 --max-rounds 30 --quiet"
	if [ -n "$inround" ]; then
		# shellcheck disable=SC2086
		$wrap "$demo" $save $inround >"$tmp/kill.out" 2>&1
		krc=$?
		[ $krc = 137 ] || ko "kill $i: $inround: exit $krc, expected 137 (SIGKILL): $(cat "$tmp/kill.out")"
	else
		# shellcheck disable=SC2086
		$wrap "$demo" $save >"$tmp/kill.out" 2>&1 &
		bg=$!
		n=0
		while [ ! -s "$k" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n + 1)); done
		sleep "0.$(od -An -tu2 -N2 /dev/urandom | awk '{ printf "%02d", $1 % 100 }')"
		kill -9 $bg 2>/dev/null
		wait $bg 2>/dev/null
	fi
	bg=""
	[ -e "$k" ] || { ko "kill $i: no file"; continue; }
	for mode in mmap read; do
		demo "kill$i-$mode" --from "file:$k" --mapped --restore $mode \
			--ram $kill_ram
		if [ $rc = 1 ]; then
			expect "kill$i-$mode" 1 "incomplete"
			refused=$((refused + 1))
		elif [ -n "$inround" ]; then
			ko "kill$i-$mode: killed in round $r of 30, exit $rc, not refused: $(cat "$tmp/kill$i-$mode.out")"
		else
			expect "kill$i-$mode" 0 "verified: "
		fi
	done
done
echo "killed saves: $refused of $((kills * 2)) restores refused as incomplete ($(((kills + 1) / 2)) saves killed in a precopy round)"

# Usage errors.
demo use-tcp --to tcp:127.0.0.1:9 --mapped
expect use-tcp 2 "--mapped needs"
demo use-qemu --to "file:$tmp/q.msm" --mapped --qemu-profile
expect use-qemu 2 "--mapped needs"
demo use-chan --to "file:$tmp/c.msm" --mapped --channels 2
expect use-chan 2 "--mapped needs"
demo use-listen --listen tcp:127.0.0.1:0 --mapped
expect use-listen 2 "--mapped needs"
demo use-restore --from "file:$snap" --mapped --restore copy
expect use-restore 2 "mmap or read"
demo use-kill --from "file:$snap" --mapped --kill-in-round 3
expect use-kill 2 "--kill-in-round needs --to"
demo use-kill0 --to "file:$tmp/k0.msm" --mapped --kill-in-round 0
expect use-kill0 2 "1 to 10000"

exit $fail
