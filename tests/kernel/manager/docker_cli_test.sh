#!/usr/bin/env bash
# The stock docker CLI against a real swarm-kernel manager (real consensus-raft, pki-x509,
# scheduler-spread and transport-tls plugins; the fake runtime until runtime-docker lands), over
# the manager's Unix socket, checking what the CLI prints. Also: the manager killed with -9 and
# restarted keeps everything it acknowledged; bad requests get Docker's errors.
#
#   docker_cli_test.sh <build-dir>
set -euo pipefail

build=$1
# Debian's docker.io CLI is the one the project promises to work with; DOCKER_CLI picks another.
docker=${DOCKER_CLI:-/usr/bin/docker}
[ -x "$docker" ] || docker=$(command -v docker || true)
if [ -z "$docker" ]; then
  echo "docker_cli_test: no docker CLI found; scripts/install-deps.sh installs docker.io" >&2
  exit 1
fi

work=$(mktemp -d /tmp/swarm-docker-cli.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/plugins.conf" <<EOF
[consensus]
library = $build/plugins/consensus-raft/consensus-raft.so
[pki]
library = $build/plugins/pki-x509/pki-x509.so
[scheduler]
library = $build/plugins/scheduler-spread/scheduler-spread.so
[runtime]
library = $build/tests/fakes/runtime/fake-runtime.so
[transport]
library = $build/plugins/transport-tls/transport-tls.so
EOF

sock="$work/api.sock"
export DOCKER_HOST="unix://$sock"
export DOCKER_CONFIG="$work/docker-config"  # no user config, no credential helpers

start() {
  "$build/bin/swarm-kernel" --plugins "$work/plugins.conf" --state-dir "$work/state" \
    --api-socket "$sock" "$@" >>"$work/manager.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if [ -S "$sock" ] && "$docker" version >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "the manager did not start serving within 10 s; its log:" >&2
  cat "$work/manager.log" >&2
  exit 1
}

fail() {
  echo "FAILED: $*" >&2
  echo "--- manager log ---" >&2
  tail -30 "$work/manager.log" >&2
  exit 1
}

# expect "<what>" <pattern> -- command...: the command succeeds and its output matches.
expect() {
  local what=$1 pattern=$2
  shift 3
  local out
  out=$("$@" 2>&1) || fail "$what: '$*' exited $?: $out"
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: '$*' printed:
$out
which does not match: $pattern"
}

# refuse "<what>" <pattern> -- command...: the command fails and its error matches.
refuse() {
  local what=$1 pattern=$2
  shift 3
  local out
  if out=$("$@" 2>&1); then fail "$what: '$*' succeeded: $out"; fi
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: '$*' printed:
$out
which does not match: $pattern"
}

start
expect "a fresh node is not in a swarm" "Swarm: inactive" -- "$docker" info
refuse "node ls before init" "not a swarm manager" -- "$docker" node ls

expect "swarm init" "Swarm initialized: current node \([a-z0-9]{25}\) is now a manager" -- \
  "$docker" swarm init --listen-addr 127.0.0.1:2377 --advertise-addr 127.0.0.1:2377
refuse "a second init" "already part of a swarm" -- "$docker" swarm init --advertise-addr 127.0.0.1
expect "swarm info" "Is Manager: true" -- "$docker" info
expect "node ls shows the leader" "\* +[^ ]+ +Ready +Active +Leader" -- "$docker" node ls
expect "join-token worker" "docker swarm join --token SWMTKN-1-[a-z0-9]{50}-[a-z0-9]{25} 127.0.0.1:2377" -- \
  "$docker" swarm join-token worker
old=$("$docker" swarm join-token -q worker)
expect "join-token rotation" "Successfully rotated worker join token" -- "$docker" swarm join-token --rotate worker
new=$("$docker" swarm join-token -q worker)
[ "$old" != "$new" ] || fail "the worker token did not change on rotation"
[ "${old:0:59}" = "${new:0:59}" ] || fail "rotation changed the root CA digest part of the token"
expect "manager token unchanged" "^$($docker swarm join-token -q manager)\$" -- "$docker" swarm join-token -q manager

# Root CA rotation: a new root, tokens re-digested with their secrets kept.
root_before=$("$docker" swarm ca)
token_before=$("$docker" swarm join-token -q worker)
expect "swarm ca --rotate" "BEGIN CERTIFICATE" -- timeout 60 "$docker" swarm ca --rotate
root_after=$("$docker" swarm ca)
token_after=$("$docker" swarm join-token -q worker)
[ "$root_before" != "$root_after" ] || fail "swarm ca --rotate left the root CA as it was"
[ "${token_before:0:59}" != "${token_after:0:59}" ] || fail "the join token still carries the old root's digest"
[ "${token_before:60}" = "${token_after:60}" ] || fail "the root rotation changed the join token's secret"
new="$token_after"
expect "node TLS info follows the new root" "$(printf '%s' "$root_after" | sed -n 2p | cut -c1-20)" -- \
  "$docker" node inspect self --format '{{.Description.TLSInfo.TrustRoot}}'

expect "swarm update" "Swarm updated" -- "$docker" swarm update --task-history-limit 7 --cert-expiry 48h
expect "the update shows" "Task History Retention Limit: 7" -- "$docker" info
refuse "cert expiry below one hour" "NodeCertExpiry|at least one hour|1h" -- "$docker" swarm update --cert-expiry 30m

expect "node update" "" -- "$docker" node update --availability drain --label-add zone=a self
expect "node inspect" "drain map\[zone:a\]" -- "$docker" node inspect self --format '{{.Spec.Availability}} {{.Spec.Labels}}'
expect "node ls shows drain" "Ready +Drain +Leader" -- "$docker" node ls
refuse "demoting the last manager" "last manager of the swarm" -- "$docker" node demote self
refuse "an unknown node" "[Nn]o such node: nosuchnode" -- "$docker" node inspect nosuchnode
expect "node ps" "ID +NAME +IMAGE +NODE +DESIRED STATE" -- "$docker" node ps self

printf 's3cret' >"$work/secret.txt"
expect "secret create" "^[a-z0-9]{25}$" -- "$docker" secret create db-pass "$work/secret.txt"
refuse "a taken secret name" "already (in use|exists)" -- "$docker" secret create db-pass "$work/secret.txt"
refuse "a bad secret name" "[Nn]ame|invalid" -- "$docker" secret create "bad name!" "$work/secret.txt"
expect "secret ls" "db-pass" -- "$docker" secret ls
secret_json=$("$docker" secret inspect db-pass)
grep -q '"Data"' <<<"$secret_json" && fail "secret inspect returned the secret's data"
expect "config create" "^[a-z0-9]{25}$" -- "$docker" config create app-conf "$work/secret.txt"
expect "config inspect" "czNjcmV0" -- "$docker" config inspect app-conf --format '{{json .Spec.Data}}'

# kill -9 and restart: everything acknowledged is still there.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start
expect "after kill -9: the node" "Ready +Drain +Leader" -- "$docker" node ls
expect "after kill -9: the secret" "db-pass" -- "$docker" secret ls
expect "after kill -9: the config" "app-conf" -- "$docker" config ls
expect "after kill -9: the rotated token" "^$new\$" -- "$docker" swarm join-token -q worker
expect "after kill -9: the update" "Task History Retention Limit: 7" -- "$docker" info

# Recovery as a one-manager swarm keeps every object.
refuse "force-new-cluster through the API" "restart swarm-kernel with --force-new-cluster" -- \
  "$docker" swarm init --force-new-cluster --advertise-addr 127.0.0.1
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start --force-new-cluster
expect "after --force-new-cluster: the node leads" "Ready +Drain +Leader" -- "$docker" node ls
expect "after --force-new-cluster: the secret" "db-pass" -- "$docker" secret ls
expect "after --force-new-cluster: writes work" "^[a-z0-9]{25}$" -- "$docker" config create after-recovery "$work/secret.txt"

expect "secret rm" "db-pass" -- "$docker" secret rm db-pass
refuse "secret rm again" "[Nn]o such secret" -- "$docker" secret rm db-pass
refuse "leave without force" "--force" -- "$docker" swarm leave
expect "leave with force" "Node left the swarm" -- "$docker" swarm leave --force
expect "inactive again" "Swarm: inactive" -- "$docker" info
refuse "init again in the same process" "restart swarm-kernel" -- "$docker" swarm init --advertise-addr 127.0.0.1

# Autolock: a new process on a fresh state directory.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
rm -rf "$work/state"
start
expect "init with autolock" "SWMKEY-1-" -- "$docker" swarm init --autolock --listen-addr 127.0.0.1:2377 --advertise-addr 127.0.0.1
key=$("$docker" swarm unlock-key -q)
[[ "$key" =~ ^SWMKEY-1-[A-Za-z0-9+/]{43}$ ]] || fail "unlock-key printed '$key'"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start
expect "a restarted autolocked manager is locked" "Swarm: locked" -- "$docker" info
refuse "a locked manager serves nothing" "needs to be unlocked" -- "$docker" node ls
refuse "a wrong unlock key" "invalid key" -- sh -c "echo SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA | '$docker' swarm unlock"
refuse "a malformed unlock key" "SWMKEY-1-" -- sh -c "echo nonsense | '$docker' swarm unlock"
expect "the right unlock key" "" -- sh -c "echo '$key' | '$docker' swarm unlock"
expect "unlocked, it serves again" "Ready +Active +Leader" -- "$docker" node ls
[ "$("$docker" swarm unlock-key -q)" = "$key" ] || fail "the unlock key changed across the restart"

# Rotating the unlock key re-seals the manager's keys: the old key no longer opens them.
new_key=$("$docker" swarm unlock-key --rotate -q)
[[ "$new_key" =~ ^SWMKEY-1- ]] && [ "$new_key" != "$key" ] || fail "unlock-key --rotate printed '$new_key'"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start
refuse "the rotated-out key" "invalid key" -- sh -c "echo '$key' | '$docker' swarm unlock"
expect "the new key" "" -- sh -c "echo '$new_key' | '$docker' swarm unlock"
expect "autolock off" "Swarm updated" -- "$docker" swarm update --autolock=false
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start
expect "without autolock a restart is not locked" "Ready +Active +Leader" -- "$docker" node ls

# The API on TCP with mutual TLS, as dockerd --tlsverify: only clients with a certificate from
# the given CA get in.
tls="$work/tls"
mkdir -p "$tls"
mint() {  # mint <name> <extensions>: a P-256 key and a certificate from the test CA
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/$1-key.pem" \
    -out "$tls/$1.csr" -subj "/CN=$1" 2>/dev/null
  printf '%s\n' "$2" >"$tls/$1.ext"
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
    -out "$tls/$1.pem" -days 2 -extfile "$tls/$1.ext" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/ca-key.pem" \
  -out "$tls/ca.pem" -days 2 -subj "/CN=api-test-ca" 2>/dev/null
mint server "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
mint client "extendedKeyUsage=clientAuth"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start --api-tcp 127.0.0.1:0 --api-tls-cert "$tls/server.pem" --api-tls-key "$tls/server-key.pem" \
  --api-tls-ca "$tls/ca.pem"
port=$(grep -o 'tcp://127.0.0.1:[0-9]*' "$work/manager.log" | tail -1 | cut -d: -f3)
[ -n "$port" ] && [ "$port" != 0 ] || fail "the manager did not log its TCP API port"
tcp=(-H "tcp://127.0.0.1:$port" --tlsverify --tlscacert "$tls/ca.pem")
expect "the TCP API with a client certificate" "Ready +Active +Leader" -- env -u DOCKER_HOST \
  "$docker" "${tcp[@]}" --tlscert "$tls/client.pem" --tlskey "$tls/client-key.pem" node ls
refuse "the TCP API without a client certificate" "certificate|tls|TLS" -- env -u DOCKER_HOST \
  "$docker" "${tcp[@]}" node ls
refuse "plain HTTP on the TCP API" "EOF|reset|malformed|error" -- env -u DOCKER_HOST \
  "$docker" -H "tcp://127.0.0.1:$port" node ls
echo "docker CLI session passed"
