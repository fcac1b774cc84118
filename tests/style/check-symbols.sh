#!/bin/sh
# Every global symbol libmigstream.a defines must carry the project prefix
# (ms_ for the API, ms__ for internals): a static archive cannot hide them.
# Compiler-made symbols are not ours: the sanitizers' and coverage's, and
# on i386 the PIC helpers __x86.get_pc_thunk.REG (hidden, in COMDAT
# groups that the linker folds into one).
set -u
lib="${top_builddir:-.}/src/libmigstream.a"
nm_cmd="${NM:-nm}"
[ -f "$lib" ] || { echo "missing $lib" >&2; exit 99; }
bad=$("$nm_cmd" -g --defined-only "$lib" 2>/dev/null |
	awk 'NF >= 3 && $2 ~ /^[A-Z]$/ { print $3 }' |
	sed 's/^__odr_asan[.]//' |
	grep -v -e '^_*ms_' -e '^__asan' -e '^__sancov' -e '^__ubsan' \
		-e '^__gcov' -e '^__llvm' -e '^__x86[.]get_pc_thunk[.]' || true)
if [ -n "$bad" ]; then
	echo "global symbols without the ms_ prefix in $lib:" >&2
	echo "$bad" >&2
	exit 1
fi
count=$("$nm_cmd" -g --defined-only "$lib" | awk 'NF >= 3 && $2 ~ /^[A-Z]$/' | wc -l)
[ "$count" -gt 0 ] || { echo "no symbols found in $lib" >&2; exit 99; }
echo "ok: $count global symbols, all prefixed"
