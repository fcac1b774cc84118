#!/bin/sh
# Differential test: every input of the fuzz corpora and of the test data
# (tests/data/**, the gzip'd captures gunzipped) gets the same verdict,
# valid or invalid, from "migstream-dump verify" and from ms_load_run()
# with a handler for every section (tests/dump/load-verdict.c, which says how
# its handlers delimit a payload).  A difference lists the input and both
# messages.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
lv="$bld/tests/dump/load-verdict"
[ -x "$dump" ] || { echo "$dump not built" >&2; exit 99; }
[ -x "$lv" ] || { echo "$lv not built" >&2; exit 99; }
. "$src/tests/lib/run-wrap.sh" && ms_wrap dump lv
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=134"
export ASAN_OPTIONS
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0

# One input: both verdicts, compared.
compare() {
	f=$1
	name=$2
	"$dump" verify -q "$f" >/dev/null 2>"$tmp/verify.err"
	v=$?
	"$lv" "$f" >"$tmp/load.out" 2>"$tmp/load.err"
	l=$?
	n=$((n + 1))
	if [ $v -gt 1 ] || [ $l -gt 1 ]; then
		echo "FAIL: $name: verify exit $v, load-verdict exit $l:" \
			"$(cat "$tmp/verify.err" "$tmp/load.err")" >&2
		fail=1
	elif [ $v -ne $l ]; then
		echo "FAIL: $name: verify says $([ $v -eq 0 ] && echo valid ||
			cat "$tmp/verify.err"), the library says" \
			"$(cat "$tmp/load.out")" >&2
		fail=1
	fi
}

for f in "$src"/tests/fuzz/corpus/*/* $(find "$src/tests/data" -type f |
	LC_ALL=C sort); do
	[ -f "$f" ] || continue
	case $f in
	*.gz)
		gzip -dc "$f" >"$tmp/in" 2>/dev/null || continue
		case $f in
		*.mig.gz) compare "$tmp/in" "$f" ;;
		esac
		;;
	*/args | */status | */message | */why | *.sh | *.list | *.json | \
		*.sections) ;;
	*) compare "$f" "$f" ;;
	esac
done
echo "$n inputs compared"
[ $n -gt 50 ] || { echo "FAIL: only $n inputs found" >&2; fail=1; }
exit $fail
