#!/bin/sh
# Makes sure a Docker daemon answers on the socket the tests use, starting Debian's dockerd when
# none does. Idempotent and safe to run from several tests at once (a lock serialises starters).
#
#   tests/docker/start-dockerd.sh        # prints the socket path once /_ping answers OK
#
# A daemon that already answers is used as it is (whoever started it owns it). Otherwise dockerd
# starts with no bridge and no iptables rules, so containers only ever get network none or host
# and the machine's network stays untouched; its data lives under /var/lib/docker and its log in
# /var/log/swarm-test-dockerd.log. It keeps running after the tests, for the next run.
#
# Environment: DOCKER_SOCKET (default /var/run/docker.sock), DOCKERD (default /usr/sbin/dockerd),
# DOCKERD_WAIT_SECONDS (default 60).
set -eu

socket=${DOCKER_SOCKET:-/var/run/docker.sock}
dockerd=${DOCKERD:-/usr/sbin/dockerd}
wait_seconds=${DOCKERD_WAIT_SECONDS:-60}
log=/var/log/swarm-test-dockerd.log

ping() {
  [ -S "$socket" ] && [ "$(curl -s --max-time 2 --unix-socket "$socket" http://localhost/_ping 2>/dev/null)" = OK ]
}

if ping; then
  echo "$socket"
  exit 0
fi

if [ ! -x "$dockerd" ]; then
  echo "start-dockerd: $dockerd not found; install docker.io (scripts/install-deps.sh)" >&2
  exit 1
fi

exec 9>/run/swarm-test-dockerd.lock
flock 9
# Someone else may have started it while we waited for the lock.
if ping; then
  echo "$socket"
  exit 0
fi

set -- --host "unix://$socket" --bridge=none --iptables=false --data-root /var/lib/docker
if "$dockerd" --help 2>&1 | grep -q -- '--ip6tables'; then
  set -- "$@" --ip6tables=false
fi
# A stale pid file from a daemon that died would make dockerd refuse to start.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  rm -f "$pidfile"
fi
# Detached from this shell (new session, no inherited descriptors) so ctest does not wait on it.
setsid "$dockerd" "$@" >>"$log" 2>&1 9>&- </dev/null &

elapsed=0
while ! ping; do
  if [ "$elapsed" -ge $((wait_seconds * 10)) ]; then
    echo "start-dockerd: dockerd did not answer on $socket within ${wait_seconds} s; see $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.1
  elapsed=$((elapsed + 1))
done
echo "$socket"
