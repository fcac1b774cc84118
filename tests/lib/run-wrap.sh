# shellcheck shell=sh
# Sourced by the script tests that run built programs.  ms_wrap VAR...:
# when $MS_RUN_WRAPPER is set (run-tests.sh --cross: the qemu-user
# emulator of the target), each VAR naming a built program is pointed at a
# small script that runs it under the wrapper, so that everything that
# starts it (the script itself, xargs, a program's exec) runs the target's
# binary; without it nothing changes.  Exits 99 if the script cannot be
# written.
#
# ms_sanitizer_exit: sanitizer findings exit 134, so that a finding cannot
# pass for an expected failure status of the program under test.
ms_wrap() {
	[ -n "${MS_RUN_WRAPPER:-}" ] || return 0
	ms_wrap_dir="${top_builddir:-.}/tests/run-wrap"
	mkdir -p "$ms_wrap_dir" || exit 99
	for ms_wrap_var in "$@"; do
		eval "ms_wrap_prog=\$$ms_wrap_var"
		case "$ms_wrap_prog" in
		/*) ;;
		*) ms_wrap_prog="$(pwd)/$ms_wrap_prog" ;;
		esac
		ms_wrap_to="$ms_wrap_dir/${ms_wrap_prog##*/}"
		# Written aside and renamed: tests run in parallel.
		printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$MS_RUN_WRAPPER" \
			"$ms_wrap_prog" >"$ms_wrap_to.$$" &&
			chmod +x "$ms_wrap_to.$$" &&
			mv -f "$ms_wrap_to.$$" "$ms_wrap_to" || exit 99
		eval "$ms_wrap_var=\$ms_wrap_to"
	done
}

ms_sanitizer_exit() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=134"
	UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=134"
	LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=134"
	export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
}
