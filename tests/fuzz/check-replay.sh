#!/bin/sh
# Replays the seed corpus of every fuzz target (built with a replay main()
# unless configured with --enable-fuzzing): each input must be handled
# without a crash, a sanitizer report or a leak.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
. "$src/tests/lib/run-wrap.sh"
status=0
for t in qemu_reader native_reader dump_walk load_feed dump_state \
	dump_convert dump_extract; do
	prog="$bld/tests/fuzz/fuzz_$t"
	dir="$src/tests/fuzz/corpus/$t"
	[ -x "$prog" ] || { echo "missing $prog" >&2; exit 99; }
	ms_wrap prog
	n=$(find "$dir" -type f | wc -l)
	[ "$n" -gt 0 ] || { echo "empty corpus $dir" >&2; exit 99; }
	# shellcheck disable=SC2086
	if ! find "$dir" -type f -print0 | xargs -0 ${MS_REPLAY_WRAPPER:-} "$prog"; then
		echo "FAIL: fuzz_$t on its corpus" >&2
		status=1
	else
		echo "ok: fuzz_$t replayed $n inputs"
	fi
done
exit $status
