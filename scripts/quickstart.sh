#!/usr/bin/env bash
# Builds swarm-kernel, starts one manager node with the bundled plugins (fakes for kinds not built
# yet), initializes a one-manager swarm on loopback and keeps it running in the foreground.
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
  echo "NOTE: $fakes of 5 plugin kinds are served by FAKES (test doubles from tests/fakes/): the"
  echo "swarm runs, but nothing runs containers until the bundled plugin for that kind exists."
fi

# runtime-docker runs containers on the local Docker Engine: start it (no bridge, no iptables
# rules: containers get network none or host) and make the local test image.
if grep -q "runtime-docker.so" "$conf"; then
  echo
  echo "== Docker Engine for runtime-docker"
  "$root/tests/docker/start-dockerd.sh"
  image=$("$root/tests/docker/test-image.sh" swarm-test/busybox:latest)
  echo "local image swarm-test/busybox:latest ($image)"
fi

# One manager, its state under the build directory, its API on the usual socket.
state="$build/quickstart/state"
socket=${SWARM_API_SOCKET:-/var/run/swarm-kernel.sock}
log="$build/quickstart/swarm-kernel.log"
echo
echo "== starting: $build/bin/swarm-kernel --plugins $conf --state-dir $state --api-socket $socket $*"
echo "   (log: $log)"
"$build/bin/swarm-kernel" --plugins "$conf" --state-dir "$state" --api-socket "$socket" "$@" \
  >"$log" 2>&1 &
kernel=$!
trap 'kill -TERM "$kernel" 2>/dev/null; wait "$kernel" 2>/dev/null; exit 0' INT TERM
ctl=("$build/bin/swarmctl" -H "unix://$socket")
for _ in $(seq 1 100); do
  if "${ctl[@]}" swarm inspect >/dev/null 2>&1 || grep -q "waiting for swarm init" "$log"; then break; fi
  if ! kill -0 "$kernel" 2>/dev/null; then
    echo "scripts/quickstart.sh: swarm-kernel exited; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done

if ! "${ctl[@]}" swarm inspect >/dev/null 2>&1; then
  echo
  echo "== swarmctl swarm init --listen-addr 127.0.0.1:2377 --advertise-addr 127.0.0.1"
  "${ctl[@]}" swarm init --listen-addr 127.0.0.1:2377 --advertise-addr 127.0.0.1
fi
echo
echo "== swarmctl node ls"
"${ctl[@]}" node ls

# A sample service: two replicas of the local busybox image, on network none.
if grep -q "runtime-docker.so" "$conf" && ! "${ctl[@]}" service inspect hello >/dev/null 2>&1; then
  echo
  echo "== swarmctl service create --name hello --replicas 2 swarm-test/busybox:latest ..."
  "${ctl[@]}" service create --name hello --replicas 2 swarm-test/busybox:latest \
    sh -c 'while true; do echo "hello from $(hostname)"; sleep 5; done'
fi
if "${ctl[@]}" service inspect hello >/dev/null 2>&1; then
  echo
  echo "== swarmctl service ls; swarmctl service ps hello"
  "${ctl[@]}" service ls
  "${ctl[@]}" service ps hello
  echo
  echo "== its containers on the Docker Engine"
  /usr/bin/docker ps --filter label=com.docker.swarm.service.name=hello \
    --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
fi
echo
echo "The swarm is up. Drive it with swarmctl or the stock docker CLI, e.g.:"
echo "  ${ctl[*]} node ls"
echo "  docker -H unix://$socket service scale hello=5"
echo "  docker -H unix://$socket service ps hello"
echo "  docker -H unix://$socket secret create my-secret ./file"
echo "Ctrl-C stops the manager (its state stays in $state)."
wait "$kernel"
