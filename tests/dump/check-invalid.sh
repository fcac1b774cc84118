#!/bin/sh
# Hostile inputs for migstream-dump, one folder per case under
# tests/data/invalid/ (the way jansson's test/suites/invalid/ works):
#
#   input    the stream bytes
#   args     one line: the command line without the program name; @IN@
#            becomes the input's path, @TMP@ a fresh empty directory
#   stdin    optional (empty): the input goes to standard input instead
#   status   the expected exit status (1 invalid, 2 usage, 3 system)
#   message  one line: a fixed string that must appear on stderr
#   why      one line: what the case is about
#
# Each case runs with a timeout (MS_INVALID_TIMEOUT seconds, 20) and a
# virtual memory limit (MS_INVALID_VMEM_KIB, 1 GiB; not under sanitizers
# or valgrind, whose shadow memory it would count).  A sanitizer report
# fails the case whatever the status.  Set MS_INVALID_CASES to a list of
# case names to run only those.  The runner lists every case whose status
# or message differ, and fails if there is one.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
cases="$src/tests/data/invalid"
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
[ -d "$cases" ] || { echo "no $cases" >&2; exit 99; }
. "$src/tests/lib/run-wrap.sh" && ms_wrap dump
# A sanitizer finding must not pass for a stream error (status 1).
ms_sanitizer_exit
timeout_s=${MS_INVALID_TIMEOUT:-20}
vmem=${MS_INVALID_VMEM_KIB:-1048576}
case "${SAN_FLAGS:-}" in
*sanitize*) vmem= ;;
esac
[ -n "${MS_UNDER_VALGRIND:-}" ] && vmem=
# Under qemu-user (run-tests.sh --cross) the emulator reserves the
# guest's address space, and runs programs several times slower.
if [ -n "${MS_RUN_WRAPPER:-}" ]; then
	vmem=
	timeout_s=$((timeout_s * 6))
fi
tmo=
command -v timeout >/dev/null 2>&1 && tmo="timeout -k 5 $timeout_s"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
failed=
n=0

# One case: 0 if it behaves as its files say; the reason on stdout if not.
run_case() {
	c=$1
	d="$cases/$c"
	for f in input args status message why; do
		[ -f "$d/$f" ] || { echo "no '$f' file"; return 1; }
	done
	want=$(cat "$d/status")
	msg=$(cat "$d/message")
	case "$want" in
	1 | 2 | 3) ;;
	*) echo "status '$want': 1, 2 or 3 expected"; return 1 ;;
	esac
	[ -n "$msg" ] || { echo "empty message"; return 1; }
	[ "$(wc -l <"$d/message")" -le 1 ] || { echo "message of more than one line"; return 1; }
	w="$tmp/$c"
	mkdir "$w" "$w/tmp" || return 1
	# The arguments: one line, split at blanks, no globbing.
	line=$(head -n 1 "$d/args")
	esc_in=$(printf '%s\n' "$d/input" | sed 's/[\\&|]/\\&/g')
	esc_tmp=$(printf '%s\n' "$w/tmp" | sed 's/[\\&|]/\\&/g')
	line=$(printf '%s\n' "$line" | sed "s|@IN@|$esc_in|g; s|@TMP@|$esc_tmp|g")
	if [ -e "$d/stdin" ]; then
		inp="$d/input"
	else
		inp=/dev/null
	fi
	(
		set -f
		[ -n "$vmem" ] && ulimit -v "$vmem"
		# shellcheck disable=SC2086
		exec $tmo ${MS_REPLAY_WRAPPER:-} "$dump" $line
	) <"$inp" >"$w/out" 2>"$w/err"
	rc=$?
	if grep -q 'Sanitizer\|runtime error\|ERROR SUMMARY: [1-9]' "$w/err"; then
		echo "a sanitizer report: $(head -c 2000 "$w/err")"
		return 1
	fi
	if [ -n "$tmo" ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
		echo "timed out after ${timeout_s} s"
		return 1
	fi
	if [ "$rc" != "$want" ]; then
		echo "status $rc, $want expected; stderr: $(head -c 2000 "$w/err")"
		return 1
	fi
	if ! grep -qF -e "$msg" "$w/err"; then
		echo "stderr lacks '$msg': $(head -c 2000 "$w/err")"
		return 1
	fi
	rm -rf "$w"
	return 0
}

for d in "$cases"/*/; do
	[ -d "$d" ] || continue
	c=$(basename "$d")
	if [ -n "${MS_INVALID_CASES:-}" ]; then
		case " $MS_INVALID_CASES " in
		*" $c "*) ;;
		*) continue ;;
		esac
	fi
	n=$((n + 1))
	if why=$(run_case "$c"); then
		echo "ok: $c"
	else
		echo "FAIL: $c: $why ($(cat "$cases/$c/why" 2>/dev/null))" >&2
		failed="$failed $c"
	fi
done
[ $n -gt 0 ] || { echo "no cases run" >&2; exit 99; }
if [ -n "$failed" ]; then
	echo "FAIL: $n cases, these differ:$failed" >&2
	exit 1
fi
echo "ok: $n cases"
exit 0
