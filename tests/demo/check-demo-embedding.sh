#!/bin/sh
# docs/EMBEDDING.md: its C blocks were compiled into tests/demo/demo-embedding
# (see mk/demo.am); it runs and prints what the guide says it prints.
set -u
src="${top_srcdir:-.}"
bld="${top_builddir:-.}"
prog="$bld/tests/demo/demo-embedding"
[ -x "$prog" ] || { echo "$prog not built" >&2; exit 99; }
. "${top_srcdir:-.}/tests/lib/run-wrap.sh" && ms_wrap prog
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
# The ```text block after "It prints".
awk '/^It prints/ { want = 1; next }
     want && /^```text$/ { on = 1; next }
     on && /^```$/ { exit }
     on' "$src/docs/EMBEDDING.md" >"$tmp/want"
[ -s "$tmp/want" ] || { echo "no 'It prints' block in docs/EMBEDDING.md" >&2; exit 1; }
# shellcheck disable=SC2086
${MS_REPLAY_WRAPPER:-} "$prog" >"$tmp/got" 2>"$tmp/err"
rc=$?
if [ $rc -ne 0 ]; then
	echo "demo-embedding exited $rc: $(cat "$tmp/err")" >&2
	exit 1
fi
if ! cmp -s "$tmp/want" "$tmp/got"; then
	echo "docs/EMBEDDING.md says it prints:" >&2
	cat "$tmp/want" >&2
	echo "it printed:" >&2
	cat "$tmp/got" >&2
	exit 1
fi
grep -q "version 2 is newer than this build's 1" "$tmp/err" || {
	echo "the older destination's refusal is missing: $(cat "$tmp/err")" >&2
	exit 1
}
echo "ok: docs/EMBEDDING.md"
