#!/bin/sh
# Every function a public header declares has a kernel-doc comment right
# above it, whose first line names it: "/**", " * name() - summary".  The
# comment's body (arguments, return codes, lifetimes) is for review; this
# catches a declaration added without one, or a comment left on the wrong
# function.
set -u
src="${top_srcdir:-.}"
status=0
for h in "$src"/include/migstream/*.h; do
	awk -v file="$(basename "$h")" '
	# Remember the name in the last kernel-doc comment that just ended.
	/^\/\*\*$/ { incomment = 1; name = ""; next }
	incomment && /^ \* [a-z_0-9]+\(\) - ./ && name == "" {
		name = $2; sub(/\(\)$/, "", name); next
	}
	incomment && /^ \*\/$/ { incomment = 0; justdoc = 1; next }
	incomment { next }
	# A declaration at column 0: its name is the identifier before "(".
	/^[a-z][^(]*[ *]ms_[a-z_0-9]+\(/ {
		decl = $0
		sub(/\(.*/, "", decl)
		n = split(decl, w, /[ *]+/)
		fn = w[n]
		if (!justdoc) {
			printf "%s:%d: %s() has no kernel-doc comment\n", file, NR, fn
			bad++
		} else if (name != fn) {
			printf "%s:%d: %s() is documented as %s()\n", file, NR, fn, name
			bad++
		}
		count++
	}
	# Only a declaration directly under the comment counts.
	!/^\/\*\*$/ { if ($0 !~ /^ \*\/$/) justdoc = (justdoc && /^[a-z]/ && !/;/) }
	END {
		printf "%s: %d functions documented\n", file, count - bad
		exit bad ? 1 : 0
	}' "$h" || status=1
done
exit $status
