#!/usr/bin/env bash
# Quick start, command 2: installs what is missing, builds and runs the
# whole test suite ('make check').  --asan runs it in an AddressSanitizer
# and UndefinedBehaviorSanitizer build, --valgrind under valgrind.
# --cross s390x (big-endian, 64-bit) or --cross i686 (32-bit size_t and
# long) cross-compiles it with Debian's cross compiler and runs every
# test program under qemu-user (see ms_install_cross_deps in
# scripts/deps.sh), in _build-ARCH; i686 programs run natively where the
# kernel can run them.  The closing note lists the tests
# skipped, with their reasons.  It installs what is missing of the build
# set and the test set of scripts/deps.sh (Check, g++, python3, QEMU,
# clang-format), valgrind only for --valgrind.
set -euo pipefail
MS_TOP=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/deps.sh
. "$MS_TOP/scripts/deps.sh"

usage() {
	echo "usage: $0 [--asan|--valgrind|--cross s390x|--cross i686]" >&2
	exit 2
}
mode=plain
arch=""
case "${1:-}" in
--asan) mode=asan ;;
--valgrind) mode=valgrind ;;
--cross) mode=cross; arch="${2:-}"; [ -n "$arch" ] || usage ;;
--cross=*) mode=cross; arch="${1#--cross=}" ;;
"") ;;
*) usage ;;
esac

if [ $mode = valgrind ]; then
	ms_install_deps valgrind
else
	ms_install_deps test
fi
ms_bootstrap
make_args=()
case $mode in
plain) dir="$MS_TOP/_build"; ms_build "$dir"; target=check ;;
asan) dir="$MS_TOP/_build-asan"; ms_build "$dir" --enable-asan; target=check ;;
valgrind) dir="$MS_TOP/_build"; ms_build "$dir"; target=check-valgrind ;;
cross)
	ms_cross_arch "$arch" || usage
	dir="$MS_TOP/_build-$arch"
	root="$dir/sysroot"
	ms_install_cross_deps "$root"
	isal=--without-isal
	[ "$MS_X_WITH_ISAL" = yes ] && isal=--with-isal
	lib="$root/usr/lib/$MS_X_MULTIARCH"
	ldflags="-L$lib -Wl,-rpath-link,$lib:$root/lib/$MS_X_MULTIARCH"
	# A 64-bit x86 kernel runs i686 programs itself (when built with
	# IA32 emulation): linked to the root's loader and libraries, they
	# run natively, a real 32-bit process and several times faster than
	# under qemu-user.  A small program tells whether this kernel can.
	native=no
	if [ "$arch" = i686 ]; then
		native_ld="-Wl,--dynamic-linker=$root/lib/ld-linux.so.2"
		native_ld="$native_ld -Wl,-rpath,$root/lib/$MS_X_MULTIARCH:$lib"
		mkdir -p "$dir"
		# shellcheck disable=SC2086
		printf 'int main(void) { return 0; }\n' |
			"$MS_X_TRIPLET-gcc" -x c -o "$dir/native-probe" - \
				$ldflags $native_ld 2>/dev/null &&
			"$dir/native-probe" 2>/dev/null && native=yes
		[ $native = yes ] && ldflags="$ldflags $native_ld"
	fi
	ms_build "$dir" --host="$MS_X_TRIPLET" "$isal" \
		CPPFLAGS="-I$root/usr/include/$MS_X_MULTIARCH -I$root/usr/include" \
		LDFLAGS="$ldflags" \
		PKG_CONFIG=pkg-config PKG_CONFIG_SYSROOT_DIR="$root" \
		PKG_CONFIG_LIBDIR="$lib/pkgconfig:$root/usr/share/pkgconfig"
	if [ $native = yes ]; then
		echo "cross $arch: this kernel runs $arch programs: run natively"
		: >"$dir/run-wrapper"
	else
		# Every program of the target runs under qemu-user, its
		# libraries from the root: the Check programs and examples
		# through the harness, those the script tests start through
		# tests/lib/run-wrap.sh.
		QEMU_LD_PREFIX="$root" MS_RUN_WRAPPER="$MS_X_QEMU"
		# Check's per-test timeouts, for an emulated CPU.
		CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
		export QEMU_LD_PREFIX MS_RUN_WRAPPER CK_TIMEOUT_MULTIPLIER
		make_args=(LOG_COMPILER="$MS_X_QEMU")
		echo "$MS_X_QEMU" >"$dir/run-wrapper"
	fi
	target=check
	;;
esac

status=0
start=$SECONDS
make -C "$dir" -j"$(nproc 2>/dev/null || echo 2)" "$target" "${make_args[@]}" \
	>"$dir/check.out" 2>&1 || status=$?
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' "$dir/check.out" || true
sed -n '/^# TOTAL/,/^# ERROR/p' "$dir/check.out"
# Each skipped test with its reason (the last line it printed).
while read -r _ t; do
	# automake names a script's log without its .sh.
	why=$(grep -v -E '^(SKIP|PASS|FAIL) ' "$dir/${t%.sh}.log" 2>/dev/null | tail -n 1) || true
	echo "skipped ($mode${arch:+ $arch}): $t: ${why:-no reason printed}"
done < <(grep -E '^SKIP:' "$dir/check.out" || true)
echo "$mode${arch:+ $arch}: make $target took $((SECONDS - start)) s"
if [ "$status" -ne 0 ]; then
	echo "test suite FAILED ($mode); details:" >&2
	ms_failed_logs "$dir" >&2
	tail -n 20 "$dir/check.out" >&2
fi
exit "$status"
