#!/bin/sh
# Memory stays bounded whatever the stream size: migstream-dump verify,
# info, state and state -m (with --desc, so nothing is spooled) read a
# generated 1 GiB page-heavy stream from a pipe (dump-rss) with a peak
# RSS under 32 MiB, measured by wait4() on the child.  Skipped in sanitizer builds (the
# shadow memory counts in the RSS) and under valgrind (too slow); set
# MS_DUMP_RSS_MIB to change the size.
set -u
bld="${top_builddir:-.}"
dump="$bld/tools/migstream-dump"
rss="$bld/tests/dump/dump-rss"
[ -x "$dump" ] && [ -x "$rss" ] || { echo "not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap dump rss
case "${SAN_FLAGS:-}" in
*sanitize*) echo "sanitizer build: skipped"; exit 77 ;;
esac
[ -n "${MS_UNDER_VALGRIND:-}" ] && { echo "under valgrind: skipped"; exit 77; }
mib=${MS_DUMP_RSS_MIB:-1024}
limit=$((32 * 1024))
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ko() { echo "FAIL: $*" >&2; fail=1; }
echo '{"page_size": 4096, "devices": []}' >"$tmp/desc.json"

for cmd in "verify -q -" "info -" "state --desc $tmp/desc.json -" \
	"state -m --desc $tmp/desc.json -"; do
	# shellcheck disable=SC2086
	out=$("$rss" "$mib" "$dump" $cmd) || { ko "dump-rss $cmd: $out"; continue; }
	set -- $out
	echo "$cmd: $mib MiB stream, peak RSS $2 KiB, status $4"
	[ "$4" -eq 0 ] || ko "$cmd: exit $4"
	[ "$2" -lt $limit ] || ko "$cmd: peak RSS $2 KiB, under $limit expected"
done
exit $fail
