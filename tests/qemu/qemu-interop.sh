#!/bin/sh
# QEMU interop, when qemu-system-x86_64 is installed (else skipped, 77):
#  - every capture of tests/data/qemu/captures.list, converted to the
#    native profile and back, is loaded by QEMU with the capture's machine
#    and device arguments (-incoming "exec:cat FILE", monitor "info
#    migrate" until "Migration status: completed");
#  - the stream qemu-reencode writes (the library's reader and writer, the
#    QEMU profile, RAM re-emitted page by page and device sections
#    re-framed) from the minimal pc capture and from the q35 one is
#    loaded by QEMU;
#  - a stream captured now (capture-qemu.sh: pc with devices, paused) is
#    verified, decoded, converted to native and back byte for byte, and
#    the copy loaded by QEMU.
# Every QEMU run is under timeout(1).  Skipped under valgrind.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
reenc="$bld/tests/qemu/qemu-reencode"
data="$src/tests/data/qemu"
qemu=${QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null 2>&1 || { echo "no $qemu: skipped"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "no timeout(1): skipped"; exit 77; }
[ -n "${MS_UNDER_VALGRIND:-}" ] && { echo "under valgrind: skipped"; exit 77; }
[ -x "$dump" ] && [ -x "$reenc" ] || { echo "not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap dump reenc
ms_sanitizer_exit
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

# qemu_load FILE MONITOR_PRE ARGS...: QEMU loads FILE; status 0 when its
# monitor reports "Migration status: completed".  With MONITOR_PRE (the
# capture's capabilities), the incoming side is deferred until they are
# set, as on the source.
qemu_load() {
	f=$1
	pre=$2
	shift 2
	log="$tmp/qemu.log"
	: >"$log"
	if [ -n "$pre" ]; then inc=defer; else inc="exec:cat $f"; fi
	{
		if [ -n "$pre" ]; then
			printf '%s\n' "$pre"
			echo "migrate_incoming \"exec:cat $f\""
		fi
		i=0
		while [ $i -lt 60 ]; do
			sleep 0.5
			echo "info migrate"
			grep -aq "Migration status: \(completed\|failed\)" "$log" && break
			i=$((i + 1))
		done
		echo quit
	} | timeout 60 "$qemu" "$@" -display none -monitor stdio -serial none \
		-incoming "$inc" >>"$log" 2>&1
	grep -aq "Migration status: completed" "$log"
}

grep -v '^#' "$data/captures.list" | while IFS='|' read -r n pre args; do
	gzip -dc "$data/$n.mig.gz" >"$tmp/$n.mig" || exit 99
	"$dump" convert --to native --compress "$tmp/$n.mig" "$tmp/$n.msn" &&
		"$dump" convert --to qemu "$tmp/$n.msn" "$tmp/$n.back" ||
		{ echo "FAIL: convert $n" >&2; exit 1; }
	cmp -s "$tmp/$n.mig" "$tmp/$n.back" || { echo "FAIL: $n: round trip differs" >&2; exit 1; }
	# shellcheck disable=SC2086
	if qemu_load "$tmp/$n.back" "$pre" $args; then
		echo "$n: converted back from native, loaded by QEMU"
	else
		echo "FAIL: QEMU ($args) did not load $n converted back: $(tail -3 "$tmp/qemu.log")" >&2
		exit 1
	fi
	case $n in
	pc-min | q35-dev)
		"$reenc" "$tmp/$n.mig" "$tmp/$n.re" || { echo "FAIL: qemu-reencode $n" >&2; exit 1; }
		# shellcheck disable=SC2086
		if qemu_load "$tmp/$n.re" "$pre" $args; then
			echo "$n: re-encoded by migstream's writer, loaded by QEMU"
		else
			echo "FAIL: QEMU did not load $n re-encoded: $(tail -3 "$tmp/qemu.log")" >&2
			exit 1
		fi
		;;
	esac
	rm -f "$tmp/$n.mig" "$tmp/$n.msn" "$tmp/$n.back" "$tmp/$n.re"
done || fail=1

# A fresh capture.
args="-M pc -m 16 -nodefaults -S -device e1000,romfile= -device piix3-usb-uhci -device usb-tablet"
# shellcheck disable=SC2086
if ! timeout 150 sh "$data/capture-qemu.sh" "$tmp/fresh.mig" $args >"$tmp/cap.log" 2>&1; then
	ko "capture-qemu.sh failed: $(cat "$tmp/cap.log") $(tail -5 "$tmp/fresh.mig.log" 2>/dev/null)"
else
	for c in "verify -q" "info --json" "sections" "state"; do
		# shellcheck disable=SC2086
		"$dump" $c "$tmp/fresh.mig" >"$tmp/out" 2>"$tmp/err" ||
			ko "$c of a fresh capture: $(cat "$tmp/err")"
	done
	"$dump" convert --to native "$tmp/fresh.mig" "$tmp/fresh.msn" &&
		"$dump" convert --to qemu "$tmp/fresh.msn" "$tmp/fresh.back" ||
		ko "convert a fresh capture: $(cat "$tmp/err")"
	cmp -s "$tmp/fresh.mig" "$tmp/fresh.back" || ko "fresh capture: round trip differs"
	"$reenc" "$tmp/fresh.mig" "$tmp/fresh.re" && cmp -s "$tmp/fresh.mig" "$tmp/fresh.re" ||
		ko "fresh capture: qemu-reencode differs"
	# shellcheck disable=SC2086
	qemu_load "$tmp/fresh.back" "" $args ||
		ko "QEMU did not load the fresh capture converted back: $(tail -3 "$tmp/qemu.log")"
fi

# A damaged stream is refused by QEMU (the check above is not vacuous):
# the fresh capture cut in its last device section.
if [ -e "$tmp/fresh.mig" ]; then
	cut=$("$dump" sections "$tmp/fresh.mig" | awk '$2 == "FULL" { o = $1 } END { print o }')
	head -c $(($cut + 12)) "$tmp/fresh.mig" >"$tmp/cut.mig"
	# shellcheck disable=SC2086
	qemu_load "$tmp/cut.mig" "" $args && ko "QEMU loaded a cut stream"
fi

[ $fail -eq 0 ] && echo "ok: QEMU interop"
exit $fail
