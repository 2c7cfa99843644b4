#!/usr/bin/env bash
# Builds swarm-kernel and runs one node in the foreground with the plugins that exist today.
# Run it as root on a fresh Debian 12:
#
#   scripts/quickstart.sh [swarm-kernel options, e.g. --log-level debug]
#
# Environment: BUILD_DIR (default: ./build in the repository). Stop the node with Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
trap 'rc=$?; echo "scripts/quickstart.sh: FAILED (exit $rc); see the output above" >&2' ERR

echo "== installing dependencies"
"$root/scripts/install-deps.sh"
echo "== configuring and building in $build"
cmake -S "$root" -B "$build"
cmake --build "$build" --parallel "$(nproc)"

# Per kind: the bundled plugin if it has been built, otherwise the test fake.
declare -A bundled=([consensus]=consensus-raft [pki]=pki-x509 [scheduler]=scheduler-spread
                    [runtime]=runtime-docker [transport]=transport-tls)
conf="$build/quickstart/plugins.conf"
mkdir -p "$(dirname "$conf")"
summary=() fakes=0
{
  echo "# Written by scripts/quickstart.sh; format: docs/plugins-conf.md"
  for kind in consensus pki scheduler runtime transport; do
    name=${bundled[$kind]}
    lib=$(find "$build/plugins" -type f -name "$name.so" -print -quit 2>/dev/null || true)
    if [ -n "$lib" ]; then
      summary+=("  $kind: $name (bundled plugin)")
    else
      lib=$(find "$build/tests/fakes" -type f -name "fake-$kind.so" -print -quit 2>/dev/null || true)
      if [ -z "$lib" ]; then
        echo "scripts/quickstart.sh: neither $name.so nor fake-$kind.so was built in $build" >&2
        exit 1
      fi
      summary+=("  $kind: fake-$kind  <- a FAKE from tests/fakes/$kind (a test double);" \
                "        the bundled $name plugin does not exist yet")
      fakes=$((fakes + 1))
    fi
    echo
    echo "[$kind]"
    echo "library = $lib"
  done
} >"$conf"

echo
echo "== plugins ($conf)"
printf '%s\n' "${summary[@]}"
if [ "$fakes" -gt 0 ]; then
  echo
  echo "NOTE: $fakes of 5 plugin kinds are served by FAKES. They exist to test the kernel and the"
  echo "plugin boundary; this node cannot run real workloads. Today swarm-kernel loads, configures"
  echo "and health-checks its plugins; the swarm logic and the bundled plugins come next."
fi
echo
echo "== running: $build/bin/swarm-kernel --plugins $conf $* (Ctrl-C stops it)"
exec "$build/bin/swarm-kernel" --plugins "$conf" "$@"
