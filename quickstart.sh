#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds migstream and
# runs the main job (the demo of every sink, then a device migrated
# between two processes through the vfio-user adapter).
set -euo pipefail
MS_TOP=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/deps.sh
. "$MS_TOP/scripts/deps.sh"

ms_install_deps
ms_bootstrap
ms_build "$MS_TOP/_build"
echo "built $MS_TOP/_build/src/libmigstream.a"
echo
"$MS_TOP/_build/examples/stream-demo"
echo
"$MS_TOP/_build/examples/vfio-user-device"
