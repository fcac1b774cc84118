# shellcheck shell=bash
# Installs the Debian packages migstream needs to build and test, if any is
# missing.  Sourced by quickstart.sh, run-tests.sh and .ci/run.

MS_DEB_PACKAGES="build-essential g++ autoconf automake pkg-config \
check zlib1g-dev libisal-dev libjansson-dev clang clang-format valgrind \
python3 qemu-system-x86"

ms_install_deps() {
	local missing="" p
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system; install the equivalents of:" \
			"$MS_DEB_PACKAGES" >&2
		return 0
	fi
	for p in $MS_DEB_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "deps: installing$missing"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || {
			echo "deps: run as root, or install:$missing" >&2
			return 1
		}
		sudo=sudo
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq || return 1
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null || return 1
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
