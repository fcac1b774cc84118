#!/bin/sh
# examples/migrate-demo end to end, with real processes and sockets:
# migrations over loopback TCP (native, QEMU, zlib; RAM pages over 2 and 4
# parallel channels, a channel reset mid-migration, channel counts that
# differ), snapshots written and restored, migstream-dump on a snapshot;
# and the faults: a connection
# closed mid-migration and a destination killed mid-migration (the source
# reports the offset, its guest keeps running, a second attempt
# succeeds), truncated and corrupted streams (refused with the offset and
# section; native corruption caught by the checksums), a destination with
# an older NIC version or a smaller RAM (refused, naming both), usage
# errors.  Under valgrind (MS_UNDER_VALGRIND=1) every demo process runs
# under $MS_REPLAY_WRAPPER with smaller sizes.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
demo="$bld/examples/migrate-demo"
dump="$bld/tools/migstream-dump"
[ -x "$demo" ] || { echo "$demo not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap demo dump
# Under sanitizers a finding must not pass for a refused migration.
ms_sanitizer_exit
tmp=$(mktemp -d) || exit 99
pids=""
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

wrap=""
if [ "${MS_UNDER_VALGRIND:-}" = 1 ]; then
	wrap="${MS_REPLAY_WRAPPER:-}"
	# Small machines: valgrind runs them 20 to 50 times slower.
	machine="--ram 4M --vdev-size 64k --dirty-rate 500"
	wait_s=300
else
	machine="--ram 16M --vdev-size 256k --dirty-rate 5000"
	wait_s=60
fi
# Destinations give up (SIGALRM) rather than wait forever.
dst_limit="--timeout-s $((wait_s * 2))"

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

# listen NAME ARGS...: start a destination in the background on a free
# port; $port and $dpid are set once it listens.
listen() {
	name=$1
	shift
	rm -f "$tmp/port"
	# shellcheck disable=SC2086
	$wrap "$demo" $machine $dst_limit --listen "tcp:127.0.0.1:${lport:-0}" \
		--port-file "$tmp/port" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	dpid=$!
	pids="$pids $dpid"
	n=0
	while [ ! -s "$tmp/port" ]; do
		if ! kill -0 "$dpid" 2>/dev/null || [ $n -ge $((wait_s * 10)) ]; then
			ko "$name: the destination did not start: $(cat "$tmp/$name.err")"
			port=0
			return 1
		fi
		sleep 0.1
		n=$((n + 1))
	done
	port=$(cat "$tmp/port")
}

# reap NAME: wait for the destination; $drc is its status.
reap() {
	wait "$dpid"
	drc=$?
	if grep -q 'Sanitizer\|runtime error\|==[0-9]*==' "$tmp/$1.err"; then
		ko "$1: $(cat "$tmp/$1.err")"
	fi
}

expect() { # expect NAME FILE PATTERN: FILE of NAME matches PATTERN
	grep -q "$3" "$tmp/$1.$2" || ko "$1: '$3' expected in its std$2: $(cat "$tmp/$1.$2")"
}

# 1. Migrations over TCP: native, QEMU's grammar, zlib.
for prof in "" --qemu-profile --compress; do
	t="tcp${prof:+-}${prof#--}"
	listen "$t-dst" || continue
	# At most 6 rounds: the guest writes at a wall-clock rate, so where
	# the migration runs slowly (zlib under qemu-user: 2 MB/s) the rounds
	# would not converge and 30 of them outlast the destination's limit.
	demo "$t-src" --to "tcp:127.0.0.1:$port" $prof --downtime-ms 1 --max-rounds 6
	[ $rc -eq 0 ] || kill "$dpid" 2>/dev/null
	reap "$t-dst"
	[ $rc -eq 0 ] || ko "$t: source exited $rc: $(cat "$tmp/$t-src.err")"
	[ $drc -eq 0 ] || ko "$t: destination exited $drc: $(cat "$tmp/$t-dst.err")"
	expect "$t-src" out '^  round 1: [0-9]* pages sent ([0-9]* zero)'
	expect "$t-src" out '^summary: migrated to tcp:.*downtime [0-9.]* ms'
	expect "$t-dst" out '^verified: .* identical to the source'
done

# 1b. RAM pages over parallel channels (--channels N: N more TCP
# connections, one ms_ram thread each): a running guest migrated with 2
# and with 4 channels in both profiles, and with zlib once; the
# destination checks every byte.
for spec in "2" "4" "2 --qemu-profile" "4 --qemu-profile" "2 --compress"; do
	nch=${spec%% *}
	prof=${spec#"$nch"}
	prof=${prof# }
	t="chan$nch${prof:+-}${prof#--}"
	listen "$t-dst" --channels "$nch" || continue
	# shellcheck disable=SC2086
	demo "$t-src" --to "tcp:127.0.0.1:$port" --channels "$nch" $prof --downtime-ms 1 --max-rounds 6
	[ $rc -eq 0 ] || kill "$dpid" 2>/dev/null
	reap "$t-dst"
	[ $rc -eq 0 ] || ko "$t: source exited $rc: $(cat "$tmp/$t-src.err")"
	[ $drc -eq 0 ] || ko "$t: destination exited $drc: $(cat "$tmp/$t-dst.err")"
	expect "$t-src" out '^  round 1: [0-9]* pages sent ([0-9]* zero)'
	expect "$t-src" out "^summary: migrated to tcp:.*pages on $nch channels).*downtime"
	expect "$t-dst" out '^verified: .* identical to the source'
done
# A channel connection reset mid-migration: the source names the channel
# and an offset, its guest keeps running, the second attempt succeeds.
listen dropch-dst --channels 2 --drop-channel-after 1000000 --accept 2 && {
	demo dropch-src --to "tcp:127.0.0.1:$port" --channels 2 --attempts 2
	[ $rc -eq 0 ] || kill "$dpid" 2>/dev/null
	reap dropch-dst
	[ $rc -eq 0 ] || ko "dropch: source exited $rc: $(cat "$tmp/dropch-src.err")"
	[ $drc -eq 0 ] || ko "dropch: destination exited $drc: $(cat "$tmp/dropch-dst.err")"
	# The destination's ms_ram stops every channel when one fails: the
	# source names whichever of its channels found it first.
	expect dropch-src err "migration 1 failed at offset [0-9]*: .*section 0 'ram': .*RAM channel [01]: offset 0x[0-9a-f]*: "
	expect dropch-src err 'the guest keeps running on the source'
	expect dropch-src out '^summary: migrated to tcp:.*pages on 2 channels'
	expect dropch-dst err "resetting channel 0's connection"
	expect dropch-dst err 'refusing to start the guest: '
	expect dropch-dst out '^verified: '
}
# Channel counts that differ: ms_ram refuses the source's START.
for pair in "2 1" "0 2"; do
	sch=${pair% *}
	dch=${pair#* }
	t="chanmis-$sch-$dch"
	listen "$t-dst" --channels "$dch" || continue
	demo "$t-src" --to "tcp:127.0.0.1:$port" --channels "$sch"
	[ $rc -eq 1 ] || kill "$dpid" 2>/dev/null
	reap "$t-dst"
	[ $rc -eq 1 ] || ko "$t: source exited $rc, 1 expected"
	[ $drc -eq 1 ] || ko "$t: destination exited $drc, 1 expected"
	expect "$t-dst" err "refusing to start the guest: .*section 0 'ram': .*channel"
	expect "$t-src" err 'the guest keeps running on the source'
done

# 2. Snapshots: written, inspected, restored; the profile is detected.
for prof in "" --qemu-profile --compress; do
	t="snap${prof:+-}${prof#--}"
	demo "$t-save" --to "file:$tmp/$t.mig" $prof
	[ $rc -eq 0 ] || ko "$t: save exited $rc: $(cat "$tmp/$t-save.err")"
	demo "$t-restore" --from "file:$tmp/$t.mig"
	[ $rc -eq 0 ] || ko "$t: restore exited $rc: $(cat "$tmp/$t-restore.err")"
	expect "$t-restore" out '^verified: '
	if [ -x "$dump" ]; then
		$wrap "$dump" verify "$tmp/$t.mig" >"$tmp/$t-dump.out" 2>&1 ||
			ko "$t: migstream-dump verify: $(cat "$tmp/$t-dump.out")"
		$wrap "$dump" info "$tmp/$t.mig" >"$tmp/$t-dump.out" 2>&1 ||
			ko "$t: migstream-dump info: $(cat "$tmp/$t-dump.out")"
		expect "$t-dump" out '^  pc.ram'
		expect "$t-dump" out '^pages: *zero [1-9][0-9]*, normal [1-9]'
	fi
done

# 3. The connection is closed mid-migration: the source reports the
# offset, its guest keeps running, and its second attempt succeeds.
listen drop-dst --drop-after 1000000 --accept 2 && {
	demo drop-src --to "tcp:127.0.0.1:$port" --attempts 2
	[ $rc -eq 0 ] || kill "$dpid" 2>/dev/null
	reap drop-dst
	[ $rc -eq 0 ] || ko "drop: source exited $rc: $(cat "$tmp/drop-src.err")"
	[ $drc -eq 0 ] || ko "drop: destination exited $drc: $(cat "$tmp/drop-dst.err")"
	expect drop-src err 'migration 1 failed at offset [1-9][0-9]*: '
	expect drop-src err 'the guest keeps running on the source'
	expect drop-src out '^summary: migrated to tcp:'
	expect drop-dst err 'refusing to start the guest: '
	expect drop-dst out '^verified: '
}

# 4. The destination is killed mid-migration; a new one is started on the
# same port while the source retries.
listen kill-dst1 --kill-after 1000000 && {
	lport=$port
	# shellcheck disable=SC2086
	# Attempts to spare: a retry may still reach the dying destination.
	$wrap "$demo" $machine --to "tcp:127.0.0.1:$port" --attempts 5 \
		>"$tmp/kill-src.out" 2>"$tmp/kill-src.err" &
	spid=$!
	pids="$pids $spid"
	reap kill-dst1
	[ $drc -eq 137 ] || [ $drc -eq 265 ] || ko "kill: the first destination exited $drc, not by SIGKILL"
	listen kill-dst2
	wait "$spid"
	rc=$?
	# A source that gave up leaves the destination waiting: end it.
	[ $rc -eq 0 ] || kill "$dpid" 2>/dev/null
	reap kill-dst2
	lport=
	[ $rc -eq 0 ] || ko "kill: source exited $rc: $(cat "$tmp/kill-src.err")"
	[ $drc -eq 0 ] || ko "kill: second destination exited $drc: $(cat "$tmp/kill-dst2.err")"
	expect kill-src err 'migration 1 failed at offset [1-9][0-9]*: '
	expect kill-src err 'the guest keeps running on the source'
	expect kill-dst2 out '^verified: '
	grep -q 'Sanitizer\|runtime error\|==[0-9]*==' "$tmp/kill-src.err" &&
		ko "kill: source: $(cat "$tmp/kill-src.err")"
}

# 5. Damaged snapshots are refused with the offset and the section.
good="$tmp/snap.mig"
qgood="$tmp/snap-qemu-profile.mig"
size=$(wc -c <"$good")
qsize=$(wc -c <"$qgood")
head -c $((size / 2)) "$good" >"$tmp/trunc.mig"
demo trunc --from "file:$tmp/trunc.mig"
[ $rc -eq 1 ] || ko "truncated: exit $rc, 1 expected"
expect trunc err "refusing to start the guest: end of stream: offset 0x[0-9a-f]*: section [0-9]* '"
head -c $((size - 5)) "$good" >"$tmp/trunc-end.mig"
demo trunc-end --from "file:$tmp/trunc-end.mig"
[ $rc -eq 1 ] || ko "truncated trailer: exit $rc, 1 expected"
expect trunc-end err "refusing to start the guest: .*offset 0x"
head -c $((qsize - 40)) "$qgood" >"$tmp/qtrunc.mig"
demo qtrunc --from "file:$tmp/qtrunc.mig"
[ $rc -eq 1 ] || ko "QEMU truncated: exit $rc, 1 expected"
expect qtrunc err "refusing to start the guest: end of stream: offset 0x[0-9a-f]*: section [0-9]* '"
# flip FILE OFFSET: invert every bit of the byte at OFFSET (writing a
# fixed byte would change nothing where the file already holds it).
flip() {
	fb=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((fb ^ 255)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
# One byte flipped inside a RAM page: the native checksum catches it.
cp "$good" "$tmp/bad.mig"
flip "$tmp/bad.mig" $((size / 3))
demo bad --from "file:$tmp/bad.mig"
[ $rc -eq 1 ] || ko "corrupted: exit $rc, 1 expected"
expect bad err "refusing to start the guest: checksum mismatch: offset 0x[0-9a-f]*: section 0 'ram': .*checksum"
# QEMU's grammar has no checksums: only the destination's own check
# sees the damage.
cp "$qgood" "$tmp/qbad.mig"
flip "$tmp/qbad.mig" $((qsize / 3))
demo qbad --from "file:$tmp/qbad.mig"
[ $rc -eq 1 ] || ko "QEMU corrupted: exit $rc, 1 expected"
expect qbad err "state is not the source's: RAM page [0-9]* differs"
# A corrupted record type in QEMU's grammar is a grammar error.
cp "$qgood" "$tmp/qtype.mig"
printf '\011' | dd of="$tmp/qtype.mig" bs=1 seek=8 conv=notrunc 2>/dev/null
demo qtype --from "file:$tmp/qtype.mig"
[ $rc -eq 1 ] || ko "QEMU bad record type: exit $rc, 1 expected"
expect qtype err "refusing to start the guest: .*offset 0x8"

# 6. Each check of the loaders (ms_ram's for RAM, the demo's for the
# devices), reached through QEMU's grammar
# (no checksums): bytes changed at offsets that migstream-dump's section
# listing gives, in a stream of an idle guest.
demo qsnap --to "file:$tmp/q0.mig" --qemu-profile --dirty-rate 0
if [ -x "$dump" ] && [ $rc -eq 0 ] &&
	"$dump" sections "$tmp/q0.mig" >"$tmp/q0.sections" 2>&1; then
	# at TYPE NAME: offset of the first payload byte of that section.
	at() {
		awk -v t="$1" -v n="$2" '$2 == t && $4 == n { print $1; exit }' \
			"$tmp/q0.sections" | {
			read -r off || exit 1
			hdr=$((1 + 4 + 1 + ${#2} + 4 + 4))
			[ "$1" = PART ] || [ "$1" = END ] && hdr=5
			echo $((off + hdr))
		}
	}
	# poke NAME OFFSET OCTAL...: a copy with those bytes, then loaded.
	poke() {
		name=$1
		off=$2
		shift 2
		cp "$tmp/q0.mig" "$tmp/$name.mig"
		for b in "$@"; do
			printf "\\$b" | dd of="$tmp/$name.mig" bs=1 seek="$off" \
				conv=notrunc 2>/dev/null
			off=$((off + 1))
		done
		demo "$name" --from "file:$tmp/$name.mig"
		[ $rc -eq 1 ] || ko "$name: exit $rc, 1 expected"
	}
	ram=$(at PART ram)
	poke ram-flags $((ram + 7)) 100
	expect ram-flags err "section 0 'ram'.*RAM record: XBZRLE (0x40) page found"
	poke ram-block $((ram + 9 + 4)) 130
	expect ram-block err "section 0 'ram'.*a RAM block of the block list expected, found 'pc.rXm'"
	poke ram-continue $((ram + 7)) 050
	expect ram-continue err "a RAM block name expected, found CONTINUE"
	poke ram-offset $((ram + 2)) 377
	expect ram-offset err "an offset below 0x[0-9a-f]* (the used length of RAM block 'pc.ram') expected, found 0xff"
	start=$(at START ram)
	poke ram-size $((start + 8 + 1 + 6 + 3)) 001
	expect ram-size err "block list: RAM block 'pc.ram' of used length 0x[0-9a-f]* (as registered) expected, found 0x1[0-9a-f]\{8\}"
	t=$(at FULL timer)
	poke timer $((t + 8)) 000 000 000 000
	expect timer err "section 2 'timer'.*timer period > 0 and enabled 0 or 1 expected, found period 0"
	n=$(at FULL nic)
	poke nic $((n + 6)) 000 000 001 000
	expect nic err "section 3 'nic'.*NIC ring indices below 64 expected, found rx 256"
	c=$(at FULL cpu)
	poke cpu-sub $((c + 140 + 8)) 130
	expect cpu-sub err "subsection cpu/fpu version 1 expected, found cpu/fpX version 1"
	v=$(at START vfio-dev)
	poke vfio-len "$v" 000 020 000 000
	expect vfio-len err "vfio-user chunk of at most 32768 bytes expected, found 1048576"
	poke vfio-data $((v + 20)) 125 125 125 125
	expect vfio-data err "section 4 'vfio-dev'.*vfio-user device: "
else
	ko "no section listing of the QEMU snapshot: $(cat "$tmp/q0.sections" 2>/dev/null)"
fi

# 7. Older NIC on the destination: refused, naming the device and both
# versions (over TCP: the source reports the destination's answer).
listen old-dst --nic-version 1 && {
	demo old-src --to "tcp:127.0.0.1:$port"
	[ $rc -eq 1 ] || kill "$dpid" 2>/dev/null
	reap old-dst
	[ $rc -eq 1 ] || ko "older version: source exited $rc, 1 expected"
	[ $drc -eq 1 ] || ko "older version: destination exited $drc, 1 expected"
	expect old-dst err "refusing to start the guest: .*section [0-9]* 'nic': version 2 is newer than this build's 1"
	expect old-src err "refused the migration: .*'nic': version 2 is newer than this build's 1"
	expect old-src err 'the guest keeps running on the source'
}
# A newer destination loads the older version.
demo v1-save --to "file:$tmp/v1.mig" --nic-version 1
demo v1-restore --from "file:$tmp/v1.mig"
[ $rc -eq 0 ] || ko "NIC v1 into v2: exit $rc: $(cat "$tmp/v1-restore.err")"
# A smaller machine: the RAM block is refused, both sizes named.
demo small --from "file:$good" --ram 2M
[ $rc -eq 1 ] || ko "smaller RAM: exit $rc, 1 expected"
expect small err "RAM block 'pc.ram' of used length 0x200000 (as registered) expected, found 0x[0-9a-f]*"

# 8. Usage and I/O errors.
demo usage-none
[ $rc -eq 2 ] || ko "no mode: exit $rc, 2 expected"
demo usage-two --to "file:$tmp/x" --from "file:$tmp/x"
[ $rc -eq 2 ] || ko "two modes: exit $rc, 2 expected"
demo usage-ram --to "file:$tmp/x" --ram 5000
[ $rc -eq 2 ] || ko "bad --ram: exit $rc, 2 expected"
expect usage-ram err "ram '5000': a multiple of 4k"
demo usage-zlib --to "file:$tmp/x" --qemu-profile --compress
[ $rc -eq 2 ] || ko "--compress with QEMU: exit $rc, 2 expected"
demo usage-chan --to "file:$tmp/x" --channels 2
[ $rc -eq 2 ] || ko "--channels into a file: exit $rc, 2 expected"
expect usage-chan err "channels needs a tcp: destination"
demo usage-chanfrom --from "file:$tmp/x" --channels 1
[ $rc -eq 2 ] || ko "--channels from a file: exit $rc, 2 expected"
demo usage-chan65 --to "tcp:127.0.0.1:1" --channels 65
[ $rc -eq 2 ] || ko "--channels 65: exit $rc, 2 expected"
expect usage-chan65 err "channels '65': 0 to 64 expected"
demo usage-to --to "udp:1.2.3.4:5"
[ $rc -eq 2 ] || ko "bad --to: exit $rc, 2 expected"
for side in to listen; do
	demo "badtcp-$side" --$side "tcp:127.0.0.1"
	[ $rc -eq 1 ] || ko "--$side without a port: exit $rc, 1 expected"
	expect "badtcp-$side" err "bad address 'tcp:127.0.0.1': tcp:HOST:PORT expected"
done
# An address that is not this machine's: refused, with the reason.
demo nolisten --listen "tcp:192.0.2.1:5000" --timeout-s 20
[ $rc -eq 1 ] || ko "--listen on a foreign address: exit $rc, 1 expected"
expect nolisten err "cannot listen on tcp:192.0.2.1:5000: "
demo missing --from "file:$tmp/does-not-exist"
[ $rc -eq 1 ] || ko "missing file: exit $rc, 1 expected"
expect missing err "does-not-exist: No such file"
demo empty --from "file:/dev/null"
[ $rc -eq 1 ] || ko "empty stream: exit $rc, 1 expected"
expect empty err "refusing to start the guest: .*offset"

[ $fail -eq 0 ] && echo "ok: migrate-demo"
exit $fail
