#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds migstream and
# runs the main job: examples/migrate-demo migrates a small emulated
# machine (256 MiB of RAM written by a running guest, a CPU, a timer, a
# NIC, a device behind the vfio-user adapter) from a source process to a
# destination process over TCP on loopback, then writes a snapshot file,
# restores it, and shows what migstream-dump sees in it.  It installs
# only what that needs (the toolchain, autotools, pkg-config, zlib, ISA-L
# and jansson: "build" in scripts/deps.sh); ./run-tests.sh adds the
# test tools.
set -euo pipefail
MS_TOP=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/deps.sh
. "$MS_TOP/scripts/deps.sh"

ms_install_deps build
ms_bootstrap
ms_build "$MS_TOP/_build"
b="$MS_TOP/_build"
demo="$b/examples/migrate-demo"
snap="$b/migrate-demo.snap"
echo "built $b/src/libmigstream.a"

tmp=$(mktemp -d)
dst=""
trap '[ -n "$dst" ] && kill "$dst" 2>/dev/null; rm -rf "$tmp"' EXIT

echo
echo "== Live migration over TCP on loopback: destination and source processes"
"$demo" --listen tcp:127.0.0.1:0 --port-file "$tmp/port" >"$tmp/dst.out" 2>&1 &
dst=$!
for _ in $(seq 300); do
	[ -s "$tmp/port" ] && break
	sleep 0.1
done
[ -s "$tmp/port" ] || { cat "$tmp/dst.out"; exit 1; }
# A busy guest (40000 page writes/s) and a 2 ms downtime target: a few
# precopy rounds, each resending what the guest dirtied meanwhile.
"$demo" --to "tcp:127.0.0.1:$(cat "$tmp/port")" --dirty-rate 40000 --downtime-ms 2
status=0
wait "$dst" || status=$?
dst=""
sed 's/^/  | /' "$tmp/dst.out"
[ $status -eq 0 ]

echo
echo "== Snapshot: written while the guest runs, then restored"
"$demo" --to "file:$snap" --quiet
"$demo" --from "file:$snap" --quiet

echo
echo "== migstream-dump info $snap"
"$b/tools/migstream-dump" info "$snap"
