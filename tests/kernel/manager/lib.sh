# Shared by the multi-process tests (cluster_test.sh, services_test.sh): swarm-kernel nodes on
# loopback, each with its own state directory and API socket, driven by the stock docker CLI.
#
#   source lib.sh <build-dir> <name>   # sets work, docker; defines the helpers below
# Nodes: start N [flags], kill9 N, d N <docker args> (the CLI against node N), addr N (its
# cluster address, 127.0.0.1:$((port_base + N))). Checks: expect, refuse, until_ok, count_in.
# A test that sets cluster_id gets the containers of that swarm removed at exit. KEEP_WORK=1 keeps
# the work directory (state, logs) for a look afterwards.

build=$1
port_base=${PORT_BASE:?set PORT_BASE before sourcing lib.sh}
docker=${DOCKER_CLI:-/usr/bin/docker}
[ -x "$docker" ] || docker=$(command -v docker || true)
[ -n "$docker" ] || { echo "$2: no docker CLI found; scripts/install-deps.sh installs docker.io" >&2; exit 1; }
runtime_plugin=${RUNTIME_PLUGIN:-$build/tests/fakes/runtime/fake-runtime.so}

work=$(mktemp -d "/tmp/swarm-$2.XXXXXX")
declare -A pids
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # With a real engine: the containers of this test's swarm (a killed node leaves its own behind).
  if [ -n "${cluster_id:-}" ] && [ -S /var/run/docker.sock ]; then
    /usr/bin/docker ps -aq --filter "label=io.swarm-kernel.cluster.id=$cluster_id" | xargs -r /usr/bin/docker rm -f >/dev/null 2>&1 || true
  fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work (KEEP_WORK)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
export DOCKER_CONFIG="$work/docker-config"

cat >"$work/plugins.conf" <<EOF
[consensus]
library = $build/plugins/consensus-raft/consensus-raft.so
[pki]
library = $build/plugins/pki-x509/pki-x509.so
[scheduler]
library = $build/plugins/scheduler-spread/scheduler-spread.so
[runtime]
library = $runtime_plugin
[transport]
library = $build/plugins/transport-tls/transport-tls.so
EOF

addr() { echo "127.0.0.1:$((port_base + $1))"; }
d() { local n=$1; shift; "$docker" -H "unix://$work/api$n.sock" "$@"; }

start() {  # start <n> [swarm-kernel flags...]
  local n=$1; shift
  "$build/bin/swarm-kernel" --plugins "$work/plugins.conf" --state-dir "$work/state$n" \
    --api-socket "$work/api$n.sock" "$@" >>"$work/node$n.log" 2>&1 &
  pids[$n]=$!
  for _ in $(seq 1 100); do
    if [ -S "$work/api$n.sock" ] && d "$n" version >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "node $n did not start serving within 10 s"
}
kill9() { kill -9 "${pids[$1]}"; wait "${pids[$1]}" 2>/dev/null || true; unset "pids[$1]"; rm -f "$work/api$1.sock"; }

fail() {
  echo "FAILED: $*" >&2
  for f in "$work"/node*.log; do echo "--- $f ---" >&2; tail -15 "$f" >&2; done
  exit 1
}
expect() {  # expect "<what>" <pattern> -- command...
  local what=$1 pattern=$2; shift 3
  local out
  out=$("$@" 2>&1) || fail "$what: '$*' exited $?: $out"
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: '$*' printed:
$out
which does not match: $pattern"
}
refuse() {
  local what=$1 pattern=$2; shift 3
  local out
  if out=$("$@" 2>&1); then fail "$what: '$*' succeeded: $out"; fi
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: '$*' printed:
$out
which does not match: $pattern"
}
# until_ok <seconds> "<what>" command...: retries until the command succeeds.
until_ok() {
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  local out; out=$("$@" 2>&1) || true
  fail "$what: not true within $seconds s; last: $out"
}
count_in() {  # count_in <n> <pattern> <cmd...>: lines of the command's output matching
  local n=$1 pattern=$2; shift 2
  [ "$(d "$n" "$@" 2>/dev/null | grep -Ec -- "$pattern")" -eq "${want}" ]
}

