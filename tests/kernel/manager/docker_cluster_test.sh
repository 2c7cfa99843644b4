#!/usr/bin/env bash
# A swarm of processes on the real Docker Engine: 3 managers and 2 workers, every node running its
# tasks through runtime-docker on the one shared dockerd, driven by the stock docker CLI and checked
# against the engine itself (the containers carry the cluster, node, service, task and slot labels):
#   1 the swarm forms              6 kill -9 of the leader mid rolling update: it completes
#   2 20 replicas, scale 30 and 10 7 a worker killed with -9 and restarted: no duplicate, no orphan
#   3 constraints, spread prefs    8 every manager killed: the containers keep running, untouched
#   4 a global service             9 dockerd restarted under a service: it recovers
#   5 drain                       10 service rm: no container left
#
#   docker_cluster_test.sh <build-dir>
# Environment: RUNTIME_PLUGIN (runtime-docker.so; required), PORT_BASE (default 23910: ports
# 127.0.0.1:23911-23915), DOCKER_CLUSTER_KEEP=<dir> copies the nodes' logs there when it fails,
# DOCKER_CLUSTER_LOG_LEVEL sets the nodes' --log-level, DOCKER_CLUSTER_STEPS runs only the steps
# listed (e.g. "1 2 9 10"; step 1 forms the swarm the others need).
# Step 9 restarts dockerd (ctest: RESOURCE_LOCK dockerd-restart keeps other Docker tests away).
# Only containers with this swarm's cluster label are looked at or removed.
set -euo pipefail

PORT_BASE=${PORT_BASE:-23910}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1" docker-cluster
[[ "$runtime_plugin" == *runtime-docker* ]] || fail "RUNTIME_PLUGIN must name runtime-docker.so (got $runtime_plugin)"
engine=/usr/bin/docker
unset DOCKER_HOST DOCKER_CONTEXT  # the engine calls go to /var/run/docker.sock; d() passes -H itself
image=swarm-test/busybox:latest
"$engine" image inspect "$image" >/dev/null 2>&1 || fail "no $image on the engine: run tests/docker/test-image.sh"

keep_logs() {
  local status=$?
  if [ "$status" -ne 0 ] && [ -n "${DOCKER_CLUSTER_KEEP:-}" ]; then
    mkdir -p "$DOCKER_CLUSTER_KEEP" && cp "$work"/node*.log "$DOCKER_CLUSTER_KEEP"/ 2>/dev/null || true
    echo "node logs kept in $DOCKER_CLUSTER_KEEP" >&2
  fi
  local n
  for n in "${!pids[@]}"; do kill9 "$n"; done  # reaped here, so bash reports no "Killed" job
  cleanup
}
trap keep_logs EXIT

step() { echo "docker_cluster_test: $*"; }
# Every (re)start of a node: same state directory, DOCKER_CLUSTER_LOG_LEVEL (e.g. debug) if set.
up() { start "$1" ${DOCKER_CLUSTER_LOG_LEVEL:+--log-level "$DOCKER_CLUSTER_LOG_LEVEL"}; }
# start's process without start's wait for the API, so that several nodes come back together.
launch() {
  "$build/bin/swarm-kernel" --plugins "$work/plugins.conf" --state-dir "$work/state$1" --api-socket "$work/api$1.sock" \
    ${DOCKER_CLUSTER_LOG_LEVEL:+--log-level "$DOCKER_CLUSTER_LOG_LEVEL"} >>"$work/node$1.log" 2>&1 &
  pids[$1]=$!
}
cli=1  # a live manager the CLI talks to
declare -A node_id  # node number -> swarm node ID
q() { d "$cli" "$@"; }
# The engine's containers of this swarm (running ones unless -a is given), with extra filters.
containers() { "$engine" ps -q --no-trunc --filter "label=io.swarm-kernel.cluster.id=$cluster_id" "$@"; }
count_containers() { containers "$@" | grep -c . || true; }
service_containers() { local s=$1; shift; count_containers --filter "label=com.docker.swarm.service.name=$s" "$@"; }
# engine_count <n> <service> [filters]: that many running containers of the service
engine_count() { local n=$1 s=$2; shift 2; [ "$(service_containers "$s" "$@")" -eq "$n" ]; }
running() {  # running <service> <count>: that many tasks desired and observed running
  [ "$(q service ps "$1" --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running')" -eq "$2" ]
}
on_node() {  # on_node <node number> <service>: its running tasks there, as the swarm sees them
  q node ps "${node_id[$1]}" --filter desired-state=running --format '{{.Name}} {{.CurrentState}}' |
    grep "^$2\." | grep -c Running || true
}
no_task_on() { [ "$(on_node "$1" "$2")" -eq 0 ]; }
leader() {  # the number of the node that leads, as the CLI's manager sees it
  local id; id=$(q node ls --format '{{.ID}} {{.ManagerStatus}}' | awk '$2 == "Leader" {print $1}')
  local n
  for n in "${!node_id[@]}"; do if [ "${node_id[$n]}" = "$id" ]; then echo "$n"; fi; done
}
settled() {  # settled <service> <count>: converged in the swarm and in the engine
  running "$1" "$2" && engine_count "$2" "$1"
}
# The swarm's running tasks against the engine's running containers: one container per running
# task, no container for anything else, and one running container per service slot.
consistent() {
  local tasks=() s
  for s in $(q service ls -q); do
    mapfile -t -O "${#tasks[@]}" tasks < <(q service ps "$s" --no-trunc --filter desired-state=running \
      --format '{{.ID}} {{.CurrentState}}' | awk '$2 == "Running" {print $1}')
  done
  local want_ids got_ids
  want_ids=$(printf '%s\n' "${tasks[@]}" | grep . | sort)
  got_ids=$(containers --format '{{.Label "com.docker.swarm.task.id"}}' | sort)
  if [ "$want_ids" != "$got_ids" ]; then
    echo "running tasks and running containers differ:"
    diff <(echo "$want_ids") <(echo "$got_ids") || true
    return 1
  fi
  local dup
  dup=$(containers --format '{{.Label "com.docker.swarm.service.name"}}.{{.Label "io.swarm-kernel.task.slot"}}.{{.Label "com.docker.swarm.node.id"}}' |
    sed -E 's/^([^.]+\.[1-9][0-9]*)\..*/\1/' | sort | uniq -d)
  [ -z "$dup" ] || { echo "more than one running container for: $dup"; return 1; }
}
snapshot() {  # every running container of the swarm with its start time, sorted
  local ids; ids=$(containers)
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  "$engine" inspect --format '{{.Id}} {{.State.StartedAt}}' $ids | sort
}
env_of() {  # env_of <service>: the env of each of its running containers, one line each
  local ids; ids=$(containers --filter "label=com.docker.swarm.service.name=$1")
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  "$engine" inspect --format '{{.Config.Env}}' $ids
}
updated_containers() { env_of "$1" | grep -c 'V=2' || true; }
all_updated() {  # all_updated <service> <n>: n running containers, each with V=2
  [ "$(env_of "$1" | grep -c .)" -eq "$2" ] && [ "$(updated_containers "$1")" -eq "$2" ]
}
# `docker service create/scale` without --detach waits for convergence; bounded here.
converge() { timeout "$1" "$docker" -H "unix://$work/api$cli.sock" "${@:2}"; }

# ---- 1 the swarm forms ---------------------------------------------------------------------------
step1() {
  for n in 1 2 3 4 5; do up $n; done
  expect "init" "Swarm initialized" -- d 1 swarm init --listen-addr "$(addr 1)" --advertise-addr "$(addr 1)" \
    --dispatcher-heartbeat 1s
  cluster_id=$(d 1 info --format '{{.Swarm.Cluster.ID}}')
  local manager_token worker_token
  manager_token=$(d 1 swarm join-token -q manager)
  worker_token=$(d 1 swarm join-token -q worker)
  for n in 2 3; do
    expect "manager $n joins" "joined a swarm as a manager" -- \
      d $n swarm join --token "$manager_token" --listen-addr "$(addr $n)" --advertise-addr "$(addr $n)" "$(addr 1)"
  done
  for n in 4 5; do
    expect "worker $n joins" "joined a swarm as a worker" -- \
      d $n swarm join --token "$worker_token" --listen-addr "$(addr $n)" "$(addr 1)"
  done
  want=5; until_ok 20 "five Ready nodes" count_in 1 " Ready " node ls
  want=1; until_ok 20 "one leader" count_in 1 " Leader " node ls
  want=2; until_ok 20 "two more reachable managers" count_in 1 " Reachable " node ls
  for n in 1 2 3 4 5; do node_id[$n]=$(d $n info --format '{{.Swarm.NodeID}}'); done
  step "1 five Ready nodes, three managers reachable (cluster $cluster_id)"
}

# ---- 2 replicas converge and scale, in the engine too ----------------------------------------------
step2() {
  expect "a 20-replica service converges" "converged" -- converge 180 service create --name web --replicas 20 \
    --stop-grace-period 1s "$image" sleep 1d
  until_ok 15 "20 running containers of web in the engine" engine_count 20 web
  local n sum=0
  for n in 1 2 3 4 5; do sum=$((sum + $(on_node $n web))); done
  [ "$sum" -eq 20 ] || fail "node ps over the five nodes shows $sum running web tasks, not 20"
  expect "scale to 30" "converged" -- converge 180 service scale web=30
  until_ok 15 "30 running containers of web" engine_count 30 web
  expect "scale to 10" "converged" -- converge 180 service scale web=10
  until_ok 30 "10 running containers of web (the rest stopped after their grace period)" engine_count 10 web
  until_ok 15 "10 running tasks" running web 10
  step "2 20 replicas converge, scale to 30 and back to 10, the engine follows"
}

# ---- 3 constraints and placement preferences ------------------------------------------------------
step3() {
  expect "a service on workers only" "converged" -- converge 120 service create --name onworkers --replicas 6 \
    --constraint node.role==worker --stop-grace-period 1s "$image" sleep 1d
  until_ok 15 "6 running containers of onworkers" engine_count 6 onworkers
  local where
  where=$(containers --filter label=com.docker.swarm.service.name=onworkers --format '{{.Label "com.docker.swarm.node.id"}}' |
    grep -vcE "^(${node_id[4]}|${node_id[5]})$" || true)
  [ "$where" -eq 0 ] || fail "$where onworkers container(s) run on a manager: $(containers --filter \
label=com.docker.swarm.service.name=onworkers --format '{{.Label "com.docker.swarm.node.id"}}')"
  [ $(($(on_node 4 onworkers) + $(on_node 5 onworkers))) -eq 6 ] || fail "the swarm does not show 6 onworkers tasks on 4 and 5"
  q service rm onworkers >/dev/null
  # Zone a: the three managers, zone b: the two workers; spread over zones puts half in each.
  for n in 1 2 3; do q node update --label-add zone=a "${node_id[$n]}" >/dev/null; done
  for n in 4 5; do q node update --label-add zone=b "${node_id[$n]}" >/dev/null; done
  expect "the label is set" "zone:b" -- q node inspect --format '{{.Spec.Labels}}' "${node_id[4]}"
  expect "a spread service" "converged" -- converge 120 service create --name zoned --replicas 8 \
    --placement-pref spread=node.labels.zone --stop-grace-period 1s "$image" sleep 1d
  until_ok 15 "8 running containers of zoned" engine_count 8 zoned
  local in_b
  in_b=$(containers --filter label=com.docker.swarm.service.name=zoned --format '{{.Label "com.docker.swarm.node.id"}}' |
    grep -cE "^(${node_id[4]}|${node_id[5]})$" || true)
  [ "$in_b" -eq 4 ] || fail "spread over node.labels.zone put $in_b of 8 tasks in zone b (two nodes), not 4"
  q service rm zoned >/dev/null
  until_ok 30 "onworkers and zoned leave the engine" sh -c \
    "[ -z \"\$($engine ps -q --filter label=io.swarm-kernel.cluster.id=$cluster_id --filter label=com.docker.swarm.service.name=zoned)\" ] &&
     [ -z \"\$($engine ps -q --filter label=io.swarm-kernel.cluster.id=$cluster_id --filter label=com.docker.swarm.service.name=onworkers)\" ]"
  step "3 --constraint node.role==worker keeps to 4 and 5; spread=node.labels.zone splits 4/4"
}

# ---- 4 global --------------------------------------------------------------------------------------
step4() {
  expect "a global service" "converged" -- converge 120 service create --name agent --mode global \
    --stop-grace-period 1s "$image" sleep 1d
  until_ok 15 "5 running containers of agent" engine_count 5 agent
  local nodes
  nodes=$(containers --filter label=com.docker.swarm.service.name=agent --format '{{.Label "com.docker.swarm.node.id"}}' | sort -u | grep -c .)
  [ "$nodes" -eq 5 ] || fail "the global service's 5 containers are on $nodes distinct nodes"
  until_ok 10 "5 running agent tasks" running agent 5
  step "4 a global service runs one container on each of the 5 nodes"
}

# ---- 5 drain ---------------------------------------------------------------------------------------
step5() {
  local before; before=$(on_node 4 web)
  [ "$before" -gt 0 ] || fail "worker 4 runs no web task before the drain, nothing to check"
  q node update --availability drain "${node_id[4]}" >/dev/null
  until_ok 30 "no container left for worker 4's tasks in the engine" sh -c \
    "[ -z \"\$($engine ps -q --filter label=io.swarm-kernel.cluster.id=$cluster_id --filter label=com.docker.swarm.node.id=${node_id[4]})\" ]"
  until_ok 30 "web runs 10 again, elsewhere" settled web 10
  until_ok 15 "agent runs on the other 4" settled agent 4
  [ "$(on_node 4 web)" -eq 0 ] || fail "web tasks still shown running on the drained node"
  q node update --availability active "${node_id[4]}" >/dev/null
  until_ok 30 "agent back on worker 4" settled agent 5
  step "5 draining worker 4 moved its $before web task(s) off it; the engine runs none there"
}

# ---- 6 the leader dies during a rolling update -----------------------------------------------------
step6() {
  local old
  old=$(leader)
  [ -n "$old" ] || fail "no leader found"
  q service update --detach --update-parallelism 1 --update-delay 2s --env-add V=2 web >/dev/null
  until_ok 60 "the update has started (2 containers with V=2)" sh -c \
    "[ \$($engine inspect --format '{{.Config.Env}}' \$($engine ps -q --filter label=io.swarm-kernel.cluster.id=$cluster_id \
       --filter label=com.docker.swarm.service.name=web) | grep -c V=2) -ge 2 ]"
  local done_at_kill; done_at_kill=$(updated_containers web)
  [ "$done_at_kill" -lt 10 ] || fail "the update finished before the leader could be killed"
  kill9 "$old"
  local n; for n in 1 2 3; do if [ "$n" != "$old" ]; then cli=$n; break; fi; done
  until_ok 30 "a new leader is elected" sh -c "[ -n \"\$('$docker' -H unix://$work/api$cli.sock node ls --format '{{.ManagerStatus}}' | grep -x Leader)\" ]"
  local now; now=$(leader)
  [ -n "$now" ] && [ "$now" != "$old" ] || fail "the leader is '$now' after killing node $old"
  up "$old"
  until_ok 150 "the update completes under the new leader" sh -c \
    "[ \"\$('$docker' -H unix://$work/api$cli.sock service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' web)\" = completed ]"
  until_ok 30 "10 running web tasks" running web 10
  until_ok 60 "10 running web containers, each with V=2 (the restarted node removed its stale ones)" all_updated web 10
  want=5; until_ok 30 "five Ready nodes again" count_in "$cli" " Ready " node ls
  step "6 leader (node $old) killed with $done_at_kill/10 updated; node $now led the update to completion"
}

# ---- 7 a worker killed with -9 and restarted ----------------------------------------------------------
step7() {
  local mine; mine=$(containers --filter "label=com.docker.swarm.node.id=${node_id[5]}" | sort)
  [ -n "$mine" ] || fail "worker 5 runs nothing"
  # Back within the heartbeat grace: it adopts its own containers.
  kill9 5
  up 5
  until_ok 30 "the engine matches the swarm after a quick restart" consistent
  [ "$(containers --filter "label=com.docker.swarm.node.id=${node_id[5]}" | sort)" = "$mine" ] ||
    fail "worker 5's containers changed over a quick restart (it should adopt them)"
  # Down long enough for its tasks to move: once back it removes what it no longer has.
  kill9 5
  until_ok 30 "the killed worker is Down" sh -c "'$docker' -H unix://$work/api$cli.sock node ls | grep ${node_id[5]} | grep -q Down"
  until_ok 60 "the swarm moved web off worker 5" no_task_on 5 web
  until_ok 60 "web runs 10 elsewhere" running web 10
  up 5
  until_ok 30 "worker 5 Ready again" sh -c "'$docker' -H unix://$work/api$cli.sock node ls | grep ${node_id[5]} | grep -q Ready"
  until_ok 60 "no duplicate and no orphan in the engine" consistent
  until_ok 30 "web runs 10 in the swarm and the engine" settled web 10
  step "7 worker 5 killed with -9: adopted its containers after a quick restart; after a Down spell no orphan, no duplicate"
}

# ---- 8 every manager killed ---------------------------------------------------------------------------
step8() {
  until_ok 30 "settled before" consistent
  local before; before=$(snapshot)
  [ -n "$before" ] || fail "nothing runs"
  local n
  for n in 1 2 3; do kill9 $n; done
  sleep 5
  [ "$(snapshot)" = "$before" ] || fail "the containers changed while no manager ran:
$(diff <(echo "$before") <(snapshot) || true)"
  # All three at once, as after a power cut: started one by one (start waits up to 10 s for the
  # API, which waits for a leader) the last one would come back after the new leader's grace, and
  # Swarm rightly replaces the tasks of a node that stays down.
  for n in 1 2 3; do launch $n; done
  for n in 1 2 3; do until_ok 30 "manager $n serves its API again" d $n version; done
  cli=1
  want=1; until_ok 60 "a leader again" count_in 1 " Leader " node ls
  want=5; until_ok 60 "five Ready nodes" count_in 1 " Ready " node ls
  until_ok 30 "web 10 running" running web 10
  sleep 5  # a new leader's grace for UNKNOWN nodes, then anything it would wrongly replace
  until_ok 30 "the engine matches the swarm" consistent
  local after; after=$(snapshot)
  [ "$after" = "$before" ] || fail "containers were replaced or restarted across the managers' restart:
$(diff <(echo "$before") <(echo "$after") || true)"
  step "8 all managers killed: $(echo "$before" | grep -c .) containers kept running, none restarted or replaced"
}

# ---- 9 dockerd restarted --------------------------------------------------------------------------------
restart_dockerd() {
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
    systemctl restart docker
    return
  fi
  local pid; pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] ||
    fail "dockerd is neither a systemd unit nor the pid in /var/run/docker.pid; cannot restart it"
  # Under start-dockerd.sh's lock, so no other starter sees it half down and starts a second one.
  (
    flock 9
    kill -TERM "$pid"
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    echo "dockerd $pid did not exit within 60 s" >&2; exit 1
  ) 9>/run/swarm-test-dockerd.lock || fail "stopping dockerd"
  "$(dirname "${BASH_SOURCE[0]}")/../../docker/start-dockerd.sh" >/dev/null || fail "starting dockerd again"
}
step9() {
  local live; live=$("$engine" info --format '{{.LiveRestoreEnabled}}')
  local before; before=$(containers --filter label=com.docker.swarm.service.name=web | sort)
  restart_dockerd
  until_ok 90 "web runs 10 again in the swarm and the engine" settled web 10
  until_ok 60 "agent runs 5 again" settled agent 5
  until_ok 60 "the engine matches the swarm" consistent
  if [ "$live" != true ]; then
    local kept; kept=$(comm -12 <(echo "$before") <(containers --filter label=com.docker.swarm.service.name=web | sort) | grep -c . || true)
    [ "$kept" -eq 0 ] || fail "$kept web container(s) from before the restart are running again: dockerd restarted them?"
  fi
  step "9 dockerd restarted (live-restore $live): web is back to 10, agent to 5"
}

# ---- 10 removal ------------------------------------------------------------------------------------------
step10() {
  q service rm web agent >/dev/null
  until_ok 60 "no container of the swarm left in the engine (running or not)" sh -c \
    "[ -z \"\$($engine ps -aq --filter label=io.swarm-kernel.cluster.id=$cluster_id)\" ]"
  expect "no service left" "^ID +NAME" -- q service ls
  step "10 service rm: the engine has no container of the swarm left"
}

for s in ${DOCKER_CLUSTER_STEPS:-1 2 3 4 5 6 7 8 9 10}; do "step$s"; done
echo "docker_cluster_test: passed"
