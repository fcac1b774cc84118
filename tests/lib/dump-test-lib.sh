# Sourced by the dump tool's script tests (tests/dump/check-dump.sh,
# check-convert.sh, check-extract.sh): the tool, sanitizer findings that
# cannot pass for a stream error, a temporary directory, ko() and run().
# Sets src, bld, dump, data, gen, tmp and fail.
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
data="$src/tests/data"
gen="$data/gen"
command -v python3 >/dev/null 2>&1 || { echo "no python3: skipped"; exit 77; }
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
. "$src/tests/lib/run-wrap.sh" && ms_wrap dump
ms_sanitizer_exit
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }

# Run the tool; $rc gets its status, $tmp/out and $tmp/err its output.
run() {
	"$dump" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -gt 3 ] || grep -q 'Sanitizer\|runtime error' "$tmp/err"; then
		ko "migstream-dump $* exited $rc: $(cat "$tmp/err")"
	fi
}
