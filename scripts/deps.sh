# shellcheck shell=bash
# Installs the Debian packages migstream needs to build and test, if any is
# missing.  Sourced by quickstart.sh, run-tests.sh and .ci/run.

MS_DEB_PACKAGES="build-essential g++ autoconf automake pkg-config \
check zlib1g-dev libisal-dev libjansson-dev clang clang-format valgrind \
python3 qemu-system-x86"

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

ms_install_deps() {
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system; install the equivalents of:" \
			"$MS_DEB_PACKAGES" >&2
		return 0
	fi
	# shellcheck disable=SC2086
	ms_apt_install $MS_DEB_PACKAGES
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
