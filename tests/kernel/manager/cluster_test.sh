#!/usr/bin/env bash
# A real swarm of swarm-kernel processes on loopback, driven by the stock docker CLI: 3 managers
# and 2 workers join with tokens over mutual TLS; writes on followers reach the leader; kill -9 of
# the leader elects another and the API keeps answering; a killed manager restarts with its data;
# losing quorum gives Docker's "no leader" error and --force-new-cluster recovers every object.
# Tokens: a worker token makes a worker, another cluster's token is refused. swarm ca --rotate
# renews every node's certificate, then drops the old root. A manager's leave --force takes it
# out of the consensus. Autolock seals every manager's keys: a restarted follower waits for the key.
#
#   cluster_test.sh <build-dir>
# Ports: 127.0.0.1:23871-23877 (the docker CLI test uses 2377, the API tests 23901-23902).
set -euo pipefail

PORT_BASE=23870
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1" cluster

for n in 1 2 3 4 5 6 7; do start $n; done

# ---- forming the swarm -------------------------------------------------------------------------
expect "init" "Swarm initialized" -- d 1 swarm init --listen-addr "$(addr 1)" --advertise-addr "$(addr 1)" \
  --dispatcher-heartbeat 1s
worker_token=$(d 1 swarm join-token -q worker)
manager_token=$(d 1 swarm join-token -q manager)
expect "manager 2 joins" "This node joined a swarm as a manager" -- \
  d 2 swarm join --token "$manager_token" --listen-addr "$(addr 2)" --advertise-addr "$(addr 2)" "$(addr 1)"
# Through a follower: it hands the join to the leader.
expect "manager 3 joins through manager 2" "This node joined a swarm as a manager" -- \
  d 3 swarm join --token "$manager_token" --listen-addr "$(addr 3)" --advertise-addr "$(addr 3)" "$(addr 2)"
expect "worker 4 joins" "This node joined a swarm as a worker" -- \
  d 4 swarm join --token "$worker_token" --listen-addr "$(addr 4)" "$(addr 1)"
expect "worker 5 joins through manager 3" "This node joined a swarm as a worker" -- \
  d 5 swarm join --token "$worker_token" --listen-addr "$(addr 5)" "$(addr 3)"

want=5; until_ok 15 "all five nodes Ready" count_in 1 " Ready " node ls
want=1; until_ok 15 "one leader" count_in 1 " Leader " node ls
want=2; until_ok 15 "two reachable managers" count_in 1 " Reachable " node ls
expect "a follower sees the same swarm" "Leader" -- d 3 node ls

# The worker token made workers: they cannot see or change the cluster.
refuse "a worker is no manager" "Worker nodes can't be used to view or modify cluster state" -- d 4 node ls
worker4=$(d 4 info --format '{{.Swarm.NodeID}}')
expect "the token decided the role" "^worker$" -- d 1 node inspect --format '{{.Spec.Role}}' "$worker4"
# A token of another cluster: its root digest is not this swarm's root.
d 6 swarm init --listen-addr "$(addr 6)" --advertise-addr "$(addr 6)" >/dev/null
other_token=$(d 6 swarm join-token -q manager)
refuse "another cluster's token" "digest|root" -- \
  d 7 swarm join --token "$other_token" --listen-addr "$(addr 7)" "$(addr 1)"
# This cluster's digest with a made-up secret.
bogus="${worker_token%-*}-0123456789abcdefghijklmno"
refuse "a wrong secret" "A valid join token is necessary" -- \
  d 7 swarm join --token "$bogus" --listen-addr "$(addr 7)" "$(addr 1)"
kill9 6; kill9 7

# ---- promote and demote -----------------------------------------------------------------------
expect "promote a worker" "promoted to a manager" -- d 1 node promote "$worker4"
until_ok 20 "the promoted worker serves the manager API" d 4 node ls
want=3; until_ok 20 "three reachable managers" count_in 1 " Reachable " node ls
expect "demote it again" "demoted in the swarm" -- d 1 node demote "$worker4"
until_ok 20 "the demoted manager is a worker again" sh -c "'$docker' -H unix://$work/api4.sock node ls 2>&1 | grep -q 'Worker nodes'"
want=2; until_ok 20 "two reachable managers again" count_in 1 " Reachable " node ls
expect "its role is worker" "^worker$" -- d 1 node inspect --format '{{.Spec.Role}}' "$worker4"

# ---- a manager leaves with --force: it leaves the consensus first (Swarm just stops it) ----------
kill9 4; start 4  # a process serves one consensus log: a manager once, it restarts to be one again
d 1 node promote "$worker4" >/dev/null
until_ok 20 "promoted again" d 4 node ls
want=3; until_ok 20 "three reachable managers" count_in 1 " Reachable " node ls
refuse "a manager needs --force" "participating as a manager" -- d 4 swarm leave
expect "leave --force" "left the swarm" -- d 4 swarm leave --force
expect "it is no manager any more" "^<nil>$" -- d 1 node inspect --format '{{.ManagerStatus}}' "$worker4"
want=2; until_ok 20 "two reachable managers" count_in 1 " Reachable " node ls
until_ok 20 "the node that left is Down" sh -c "'$docker' -H unix://$work/api1.sock node ls | grep '$worker4' | grep -q Down"
expect "node rm the node that left" "$worker4" -- d 1 node rm "$worker4"
kill9 4; start 4  # a process serves one swarm log: restart it to join again
expect "it joins again as a worker" "joined a swarm as a worker" -- \
  d 4 swarm join --token "$worker_token" --listen-addr "$(addr 4)" "$(addr 1)"
want=5; until_ok 15 "five Ready nodes again" count_in 1 " Ready " node ls

# ---- writes anywhere, reads after writes ---------------------------------------------------------
echo one | d 2 secret create on-follower - >/dev/null || fail "secret create on a follower"
expect "read your write on the follower" "on-follower" -- d 2 secret ls
expect "the leader has it" "on-follower" -- d 1 secret ls
until_ok 10 "the other follower has it" sh -c "'$docker' -H unix://$work/api3.sock secret ls | grep -q on-follower"

# ---- root CA rotation across the swarm: every node renews, then the old root goes ---------------
issuer_keys() {  # the issuer key each node reports, one line per distinct key
  d 1 node inspect --format '{{.Description.TLSInfo.CertIssuerPublicKey}}' $(d 1 node ls -q) | sort -u
}
old_root=$(d 1 info --format '{{.Swarm.Cluster.TLSInfo.TrustRoot}}')
expect "ca --rotate waits for every node and prints the new root" "BEGIN CERTIFICATE" -- timeout 60 "$docker" -H "unix://$work/api1.sock" swarm ca --rotate
new_key=$(d 1 info --format '{{.Swarm.Cluster.TLSInfo.CertIssuerPublicKey}}')
[ "$(d 1 info --format '{{.Swarm.Cluster.TLSInfo.TrustRoot}}')" != "$old_root" ] || fail "the root CA did not change"
[ "$(issuer_keys)" = "$new_key" ] || fail "not every node holds a certificate from the new root: $(issuer_keys)"
expect "the rotation is over" '"RootRotationInProgress":false' -- curl -s --unix-socket "$work/api1.sock" http://localhost/swarm
new_worker_token=$(d 1 swarm join-token -q worker)
[ "${new_worker_token%-*}" != "${worker_token%-*}" ] || fail "the join tokens still carry the old root's digest"
# The nodes talk with their new certificates, also after a restart (they were saved).
echo four | d 3 secret create after-rotation - >/dev/null || fail "a write through a follower after the rotation"
kill9 5; start 5
until_ok 20 "a restarted worker heartbeats with its new certificate" sh -c "'$docker' -H unix://$work/api1.sock node ls | grep \$('$docker' -H unix://$work/api5.sock info --format '{{.Swarm.NodeID}}') | grep -q Ready"
start 7
refuse "a token with the old root's digest" "root CA of the join token|digest" -- \
  d 7 swarm join --token "$worker_token" --listen-addr "$(addr 7)" "$(addr 1)"
kill9 7

# ---- autolock: every manager seals its keys; a restarted one waits for the key ---------------------
expect "autolock on" "SWMKEY-1-" -- d 1 swarm update --autolock=true
key=$(d 1 swarm unlock-key -q)
kill9 3; start 3
expect "the restarted follower is locked" "Swarm: locked" -- d 3 info
refuse "a locked manager serves nothing" "needs to be unlocked" -- d 3 node ls
echo five | d 1 secret create while-locked - >/dev/null || fail "a write while manager 3 is locked"
refuse "a wrong key" "invalid key" -- sh -c "echo SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA | '$docker' -H unix://$work/api3.sock swarm unlock"
echo "$key" | d 3 swarm unlock >/dev/null || fail "the right key did not unlock manager 3"
until_ok 20 "unlocked, it has what was written meanwhile" sh -c "'$docker' -H unix://$work/api3.sock secret ls | grep -q while-locked"
want=2; until_ok 20 "two reachable managers" count_in 1 " Reachable " node ls
d 1 swarm update --autolock=false >/dev/null  # the restarts below need no key

# ---- the leader dies ---------------------------------------------------------------------------
kill9 1
until_ok 20 "a new leader takes writes" sh -c "echo two | '$docker' -H unix://$work/api2.sock secret create after-failover -"
expect "the survivors answer" "after-failover" -- d 3 secret ls
until_ok 20 "the dead leader is shown Down" sh -c "'$docker' -H unix://$work/api2.sock node ls | grep -E 'Down .*Unreachable'"

# ---- it comes back with its data -----------------------------------------------------------------
start 1
until_ok 20 "the restarted manager caught up" sh -c "'$docker' -H unix://$work/api1.sock secret ls | grep -q after-failover"
want=5; until_ok 20 "all five Ready again" count_in 2 " Ready " node ls

# ---- quorum lost, then recovered -----------------------------------------------------------------
kill9 2; kill9 3
refuse "no quorum, no writes" "does not have a leader" -- sh -c "echo x | '$docker' -H unix://$work/api1.sock secret create lost -"
kill9 1
start 1 --force-new-cluster
expect "every object survived" "after-failover" -- d 1 secret ls
expect "and the first one" "on-follower" -- d 1 secret ls
echo three | d 1 secret create after-recovery - >/dev/null || fail "writes after --force-new-cluster"
expect "a one-manager swarm again" "Leader" -- d 1 node ls

# ---- a dead worker is removed, and its certificate with it --------------------------------------
worker5=$(d 5 info --format '{{.Swarm.NodeID}}')
until_ok 20 "worker 5 heartbeats to the recovered manager" sh -c "'$docker' -H unix://$work/api1.sock node ls | grep '$worker5' | grep -q Ready"
refuse "a live node needs --force" "is not down" -- d 1 node rm "$worker5"
kill9 5
until_ok 30 "the killed worker is Down" sh -c "'$docker' -H unix://$work/api1.sock node ls | grep '$worker5' | grep -q Down"
expect "rm a down node" "$worker5" -- d 1 node rm "$worker5"
want=4; until_ok 5 "four nodes left (the two lost managers stay listed, Down)" count_in 1 "^[a-z0-9]{25}" node ls

echo "cluster_test: passed"
