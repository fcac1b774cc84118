#!/usr/bin/env bash
# Quick start, command 2: installs what is missing, builds and runs the
# whole test suite ('make check').  --asan runs it in an AddressSanitizer
# and UndefinedBehaviorSanitizer build, --valgrind under valgrind.
set -euo pipefail
MS_TOP=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/deps.sh
. "$MS_TOP/scripts/deps.sh"

mode=plain
case "${1:-}" in
--asan) mode=asan ;;
--valgrind) mode=valgrind ;;
"") ;;
*) echo "usage: $0 [--asan|--valgrind]" >&2; exit 2 ;;
esac

ms_install_deps
ms_bootstrap
case $mode in
plain) dir="$MS_TOP/_build"; ms_build "$dir"; target=check ;;
asan) dir="$MS_TOP/_build-asan"; ms_build "$dir" --enable-asan; target=check ;;
valgrind) dir="$MS_TOP/_build"; ms_build "$dir"; target=check-valgrind ;;
esac

status=0
make -C "$dir" -j"$(nproc 2>/dev/null || echo 2)" "$target" >"$dir/check.out" 2>&1 || status=$?
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' "$dir/check.out" || true
sed -n '/^# TOTAL/,/^# ERROR/p' "$dir/check.out"
if [ "$status" -ne 0 ]; then
	echo "test suite FAILED ($mode); details:" >&2
	find "$dir/tests" "$dir/examples" -name '*.log' -newer "$dir/Makefile" \
		-exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null |
		while read -r log; do echo "== $log"; tail -n 40 "$log"; done >&2
	tail -n 20 "$dir/check.out" >&2
fi
exit "$status"
