# shellcheck shell=bash
# Installs the Debian packages migstream needs, if any is missing: each
# command only what it needs (ms_install_deps NEED...).  Sourced by
# quickstart.sh, run-tests.sh and .ci/run.

# build: what quickstart.sh needs to build the library, the dump tool and
# the examples, and to run the demo migration and migstream-dump on it.
#   build-essential  the C compiler, make and the C library's headers
#   autoconf, automake  configure and the Makefiles (a clone has neither)
#   pkg-config       configure finds zlib and jansson with it (pkg.m4)
#   zlib1g-dev       the library links zlib: the native profile's
#                    per-chunk compression and its portable CRC-32
#   libisal-dev      Intel ISA-L: the same CRC-32, several times faster
#                    (optional for configure, used when found)
#   libjansson-dev   migstream-dump parses the VM-description JSON with it
MS_DEB_BUILD="build-essential autoconf automake pkg-config zlib1g-dev \
libisal-dev libjansson-dev"

# test: what run-tests.sh adds for 'make check'.
#   check            the unit test framework of the tests/check_*.c programs
#   g++              each public header is compiled as C++ too
#   python3          the dump tool's tests generate streams and parse its
#                    JSON output with it
#   qemu-system-x86  QEMU captures fresh streams and loads what the writer
#                    and 'migstream-dump convert' produce
#                    (tests/qemu-interop.sh)
#   clang-format     the layout check (tests/check-format.sh)
MS_DEB_TEST="check g++ python3 qemu-system-x86 clang-format"

# valgrind: what run-tests.sh --valgrind adds ('make check-valgrind').
MS_DEB_VALGRIND="valgrind"

# ci: what .ci/run adds to the test set: clang, the second compiler it
# builds and tests with (-Werror), and git, which lists the tracked files
# for its in-tree build.
MS_DEB_CI="clang git"

# ms_apt_install PACKAGE...: installs those that are missing.
ms_apt_install() {
	local missing="" p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "deps: installing$missing"
	ms_apt update -qq || return 1
	# shellcheck disable=SC2086
	ms_apt install -y -qq --no-install-recommends $missing >/dev/null || return 1
}

# ms_apt ARGS...: apt-get as root (through sudo when not root).
ms_apt() {
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || {
			echo "deps: run as root, or run: apt-get $*" >&2
			return 1
		}
		sudo=sudo
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

# ms_deps_list NEED...: the packages of those needs (build, test,
# valgrind, ci); test, valgrind and ci include build, ci includes test.
ms_deps_list() {
	local need list="$MS_DEB_BUILD"
	for need in "$@"; do
		case "$need" in
		build) ;;
		test) list="$list $MS_DEB_TEST" ;;
		valgrind) list="$list $MS_DEB_TEST $MS_DEB_VALGRIND" ;;
		ci) list="$list $MS_DEB_TEST $MS_DEB_CI" ;;
		*) echo "deps: unknown need '$need'" >&2; return 2 ;;
		esac
	done
	# One of each, in order.
	echo "$list" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' '
}

# ms_install_deps NEED...: installs the missing packages of those needs.
ms_install_deps() {
	local list
	list=$(ms_deps_list "$@") || return 1
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system; install the equivalents of:" \
			"$list" >&2
		return 0
	fi
	# shellcheck disable=SC2086
	ms_apt_install $list
}

# Generates configure if needed (a git clone has none).
ms_bootstrap() {
	if [ ! -x "$MS_TOP/configure" ] || [ "$MS_TOP/configure.ac" -nt "$MS_TOP/configure" ] ||
		[ "$MS_TOP/Makefile.am" -nt "$MS_TOP/Makefile.in" ]; then
		(cd "$MS_TOP" && autoreconf -fi) >/dev/null || return 1
	fi
}

# ms_build DIR [CONFIGURE ARGS...]: configures out of tree (once) and builds.
ms_build() {
	local dir="$1"
	shift
	mkdir -p "$dir" || return 1
	(
		cd "$dir" &&
			{ [ -f Makefile ] || "$MS_TOP/configure" -q "$@"; } &&
			make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
	)
}

# ms_failed_logs DIR: the end of each test log under DIR's tests/ and
# examples/ written since its Makefile that holds a FAIL or ERROR line,
# each after a "== LOG" line: what a failed test said.  Returns 0 when
# there is none (a build that failed before its tests), so that set -e
# callers go on to show make's output.
ms_failed_logs() {
	local log
	{ find "$1/tests" "$1/examples" -name '*.log' -newer "$1/Makefile" \
		-exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null || true; } |
		while read -r log; do
			echo "== $log"
			tail -n 40 "$log"
		done
}

# Cross runs (run-tests.sh --cross ARCH).  ms_cross_arch ARCH sets:
# MS_X_TRIPLET (the cross compiler's --host), MS_X_DEBARCH (Debian's
# architecture), MS_X_MULTIARCH (its library directory) and MS_X_QEMU
# (the qemu-user emulator that runs its programs).
ms_cross_arch() {
	case "$1" in
	s390x) MS_X_TRIPLET=s390x-linux-gnu MS_X_DEBARCH=s390x
		MS_X_MULTIARCH=s390x-linux-gnu MS_X_QEMU=qemu-s390x ;;
	i686) MS_X_TRIPLET=i686-linux-gnu MS_X_DEBARCH=i386
		MS_X_MULTIARCH=i386-linux-gnu MS_X_QEMU=qemu-i386 ;;
	*) echo "deps: no cross setup for '$1' (s390x or i686)" >&2; return 2 ;;
	esac
}

# The target's libraries, from Debian's multiarch packages.
MS_X_LIBS="libc6 libgcc-s1 zlib1g zlib1g-dev libjansson4 libjansson-dev \
check libsubunit0 libsubunit-dev"
MS_X_ISAL="libisal2 libisal-dev"

# ms_install_cross_deps ROOT (after ms_cross_arch): installs the cross
# compilers and qemu-user, adds the foreign architecture to dpkg, and
# unpacks the target's libraries into ROOT, a private root that qemu-user
# takes as the target's / (QEMU_LD_PREFIX) and the compiler as a sysroot
# for the libraries.  They are not installed as dpkg's foreign packages:
# libc6-dev:ARCH would pull linux-libc-dev, libssl3 and krb5 of versions
# that upgrade or conflict with the native ones, and libisal-dev is not
# Multi-Arch: same (installing it removes the native one).  ISA-L comes
# along where Debian builds it for ARCH; MS_X_WITH_ISAL says whether.
ms_install_cross_deps() {
	local root="$1" pkgs="$MS_X_LIBS" p l t
	ms_apt_install "gcc-$MS_X_TRIPLET" "g++-$MS_X_TRIPLET" qemu-user || return 1
	if ! dpkg --print-foreign-architectures | grep -qx "$MS_X_DEBARCH"; then
		echo "deps: dpkg --add-architecture $MS_X_DEBARCH"
		if [ "$(id -u)" -eq 0 ]; then
			dpkg --add-architecture "$MS_X_DEBARCH" || return 1
		else
			sudo dpkg --add-architecture "$MS_X_DEBARCH" || return 1
		fi
		ms_apt update -qq || return 1
	elif [ -z "$(ms_x_candidate zlib1g)" ]; then
		ms_apt update -qq || return 1
	fi
	MS_X_WITH_ISAL=no
	if [ -n "$(ms_x_candidate libisal-dev)" ]; then
		MS_X_WITH_ISAL=yes
		pkgs="$pkgs $MS_X_ISAL"
	fi
	[ "$(cat "$root/.packages" 2>/dev/null)" = "$pkgs" ] && return 0
	rm -rf "$root" && mkdir -p "$root/debs" || return 1
	l=""
	for p in $pkgs; do l="$l $p:$MS_X_DEBARCH"; done
	echo "deps: unpacking$l into $root"
	# shellcheck disable=SC2086
	(cd "$root/debs" && apt-get -q -o APT::Sandbox::User=root download $l) \
		>/dev/null || return 1
	for p in "$root"/debs/*.deb; do
		dpkg-deb -x "$p" "$root" || return 1
	done
	# Absolute links (libz.so -> /lib/...) point into the root instead.
	find "$root" -type l | while read -r l; do
		t=$(readlink "$l")
		case "$t" in /*) ln -sfn "$root$t" "$l" ;; esac
	done
	echo "$pkgs" >"$root/.packages"
}

# ms_x_candidate PACKAGE: the version apt would take for the target, or "".
ms_x_candidate() {
	apt-cache policy "$1:$MS_X_DEBARCH" 2>/dev/null |
		sed -n 's/^ *Candidate: //p' | grep -v '(none)'
}
