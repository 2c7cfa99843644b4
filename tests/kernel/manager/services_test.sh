#!/usr/bin/env bash
# Services end to end on a swarm of processes, with the stock docker CLI: a manager and two
# workers (the runtime plugin is the fake runtime unless RUNTIME_PLUGIN names another): a
# replicated service converges, scales up and down, moves off a drained node and off a worker
# killed with -9; `service update` rolls, `service rollback` returns; a global service runs one
# task per node; 40 replicas on one node all start; `service rm` leaves no task.
#
#   services_test.sh <build-dir>
# Ports: 127.0.0.1:23881-23883 (PORT_BASE=23890 for 23891-23893, as ctest runs it on Docker).
set -euo pipefail

PORT_BASE=${PORT_BASE:-23880}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1" services

for n in 1 2 3; do start $n; done
d 1 swarm init --listen-addr "$(addr 1)" --advertise-addr "$(addr 1)" --dispatcher-heartbeat 1s >/dev/null
token=$(d 1 swarm join-token -q worker)
cluster_id=$(d 1 info --format '{{.Swarm.Cluster.ID}}')
for n in 2 3; do
  expect "worker $n joins" "joined a swarm as a worker" -- d $n swarm join --token "$token" --listen-addr "$(addr $n)" "$(addr 1)"
done
want=3; until_ok 15 "three Ready nodes" count_in 1 " Ready " node ls
worker2=$(d 2 info --format '{{.Swarm.NodeID}}')
worker3=$(d 3 info --format '{{.Swarm.NodeID}}')

running() {  # running <service> <count>: that many tasks desired and observed running
  [ "$(d 1 service ps "$1" --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running')" -eq "$2" ]
}
on_node() {  # on_node <node-id> <service>: running tasks of the service there
  d 1 node ps "$1" --filter desired-state=running --format '{{.Name}} {{.CurrentState}}' | grep "^$2\." | grep -c Running || true
}

# ---- replicated: create (the CLI waits for convergence), spread, scale --------------------------
expect "create converges" "converged" -- d 1 service create --name web --replicas 6 swarm-test/busybox:latest sleep 1d
expect "ls shows 6/6" "web +replicated +6/6" -- d 1 service ls
[ "$(on_node "$worker2" web)" -eq 2 ] || fail "the spread put $(on_node "$worker2" web) of 6 tasks on worker 2, not 2"
expect "scale up" "converged" -- d 1 service scale web=9
until_ok 10 "nine running" running web 9
expect "scale down" "converged" -- d 1 service scale web=4
until_ok 10 "four running" running web 4

# ---- drain, then a worker killed with -9 ---------------------------------------------------------
d 1 node update --availability drain "$worker2" >/dev/null
until_ok 15 "nothing left on the drained node" sh -c "[ \$('$docker' -H unix://$work/api1.sock node ps $worker2 --filter desired-state=running -q | wc -l) -eq 0 ]"
until_ok 15 "still four running, elsewhere" running web 4
d 1 node update --availability active "$worker2" >/dev/null
kill9 3
until_ok 20 "the killed worker is Down" sh -c "'$docker' -H unix://$work/api1.sock node ls | grep $worker3 | grep -q Down"
until_ok 20 "its tasks run elsewhere" running web 4
[ "$(on_node "$worker3" web)" -eq 0 ] || fail "tasks still shown running on the dead worker"

# ---- rolling update and rollback -------------------------------------------------------------------
expect "update rolls" "converged" -- d 1 service update --env-add COLOR=blue web
expect "the service has the new spec" "COLOR=blue" -- d 1 service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Env}}' web
until_ok 10 "four running with it" running web 4
expect "rollback" "converged|rolled back" -- d 1 service rollback web
expect "the previous spec is back" '^\[\]$' -- d 1 service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Env}}' web

# ---- logs (a real engine: the fake runtime's containers print nothing) ------------------------------
if [[ "$runtime_plugin" == *runtime-docker* ]]; then
  d 1 service create --detach --name talker --replicas 2 swarm-test/busybox:latest \
    sh -c 'echo "hello from $(hostname)"; sleep 1d' >/dev/null
  until_ok 20 "talker running" running talker 2
  # Read through the manager, from the nodes that run the tasks.
  until_ok 10 "each task's line, prefixed as the CLI does" sh -c \
    "[ \$('$docker' -H unix://$work/api1.sock service logs talker 2>&1 | grep -Ec '^talker\.[12]\.[a-z0-9]+@[^ ]+ +\| hello from') -eq 2 ]"
  d 1 service rm talker >/dev/null
fi

# ---- global --------------------------------------------------------------------------------------
expect "global service" "converged" -- d 1 service create --name agent --mode global swarm-test/busybox:latest sleep 1d
until_ok 10 "one task per live node" running agent 2

# ---- more tasks on one node than its agent brings up at once (16): the rest wait their turn ---------
expect "40 replicas on one node" "converged" -- d 1 service create --name many --replicas 40 \
  --constraint node.role==manager swarm-test/busybox:latest sleep 1d
until_ok 20 "forty running" running many 40

# ---- removal ---------------------------------------------------------------------------------------
d 1 service rm web agent many >/dev/null
until_ok 15 "no task left" sh -c "[ -z \"\$('$docker' -H unix://$work/api1.sock node ps self -q)\" ]"
expect "no service left" "^ID +NAME" -- d 1 service ls

echo "services_test: passed"
