#!/usr/bin/env bash
# Run a project-local Apache Kafka (KRaft): one broker+controller node, or a
# cluster of N combined broker+controller nodes on this machine.
#
# Usage: bash scripts/kafka.sh COMMAND DIR PORTS CONTROLLER_PORTS [ARGS...]
#   DIR               folder, e.g. .local/kafka or .local/test/kafka
#   PORTS             client listener(s), PLAINTEXT://127.0.0.1:PORT (e.g. 9092); a
#                     comma-separated list (9092,9094,9096) makes a cluster of that
#                     many nodes, node I on the I-th port
#   CONTROLLER_PORTS  KRaft controller listener(s) on 127.0.0.1 (e.g. 9093), as many
#                     as PORTS
#
# Commands:
#   install                   copy the Kafka jars (scripts/kafka/pom.xml, Maven Central)
#                             into DIR/libs; skipped if DIR/libs matches the pom (stamp).
#   start                     install if needed, format storage once, start every node
#                             that is not running in the background and wait (max 90 s)
#                             until every node answers. No-op if all are running: after
#                             one node of a cluster died, `start` brings back that one.
#   stop                      SIGTERM every node, wait (max 60 s), then SIGKILL. Not an
#                             error if it is not running.
#   stop-node I               the same for node I only (1-based; a cluster's rolling restart).
#   status                    prints "running ..." per node and exits 0 if every node
#                             runs, or "not running", exit 3.
#   quorum-leader             prints the node id of the active KRaft controller.
#   create-topic NAME PARTS   create topic NAME with PARTS partitions (replication
#                             min(3, nodes)) if it does not exist; error if it exists
#                             with another count.
#   run-class CLASS [ARGS..]  run a Kafka tool class on DIR/libs with quiet logging, e.g.
#                             org.apache.kafka.tools.ProducerPerformance --help
# Exit codes: 0 ok, 1 error (message on stderr), 2 usage, 3 not running (status only).
#
# Layout inside DIR (one node: its folder is DIR itself; a cluster: DIR/node-I):
#   libs/               runtime jars (+ .stamp: hash of the pom they came from), shared
#   tools-log4j2.xml    CLI tools logging: WARN and above to stderr
#   cluster.id          KRaft cluster id used to format every node's data/ (once)
#   [node-I/]server.properties   written on every start
#   [node-I/]log4j2.xml          broker logging -> logs/server.log (console stays quiet)
#   [node-I/]data/      log.dirs (topic data and KRaft metadata)
#   [node-I/]logs/      server.log, gc.log, console.out (JVM stdout/stderr)
#   [node-I/]kafka.pid  pid of the running node
#
# A cluster's topics default to replication min(3, nodes), min.insync.replicas
# min(2, replication) and no unclean leader election: with acks=all a record
# is acknowledged only once two replicas hold it, and a replica that missed
# records never becomes leader. Each node of a cluster gets a small heap
# (384 MB) and few threads: three JVMs share the machine.
#
# Needs java >= 17 and mvn (install: bash scripts/deps.sh). The Kafka version is the
# <kafka.version> property in scripts/kafka/pom.xml; editing the pom re-installs libs.
# Its parts, sourced below: scripts/lib/kafka-assemble.sh (install),
# scripts/lib/kafka-config.sh (a node's files, storage format) and
# scripts/lib/kafka-admin.sh (quorum-leader, create-topic).
set -euo pipefail

PROG="kafka.sh"
die()   { echo "$PROG: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^# Exit codes/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
. "$(dirname "${BASH_SOURCE[0]}")/lib/process.sh"
# The jars (install), a node's files (config, storage) and the cluster's topics.
. "$(dirname "${BASH_SOURCE[0]}")/lib/kafka-assemble.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/kafka-config.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/kafka-admin.sh"

[[ $# -ge 4 ]] || usage
CMD="$1" DIR_ARG="$2" PORTS_ARG="$3" CPORTS_ARG="$4"
shift 4
IFS=, read -r -a PORTS <<<"$PORTS_ARG"
IFS=, read -r -a CPORTS <<<"$CPORTS_ARG"
NODES=${#PORTS[@]}
(( NODES >= 1 )) || die "PORTS must not be empty"
(( ${#CPORTS[@]} == NODES )) || die "as many CONTROLLER_PORTS as PORTS are needed, got '$CPORTS_ARG' for '$PORTS_ARG'"
valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }
for p in "${PORTS[@]}" "${CPORTS[@]}"; do
  valid_port "$p" || die "ports must be numbers 1-65535, got '$p'"
done
[[ "$(printf '%s\n' "${PORTS[@]}" "${CPORTS[@]}" | sort | uniq -d)" == "" ]] \
  || die "every port must differ, got PORTS '$PORTS_ARG' and CONTROLLER_PORTS '$CPORTS_ARG'"
[[ -n "$DIR_ARG" ]] || die "DIR must not be empty"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
DIR="$(realpath -m -- "$DIR_ARG")"
LIBS="$DIR/libs"
STAMP="$LIBS/.stamp"
BOOTSTRAP="$(printf '127.0.0.1:%s,' "${PORTS[@]}")"
BOOTSTRAP="${BOOTSTRAP%,}"
VOTERS=""
for ((i = 1; i <= NODES; i++)); do VOTERS+="$i@127.0.0.1:${CPORTS[i-1]},"; done
VOTERS="${VOTERS%,}"
REPLICATION=$(( NODES < 3 ? NODES : 3 ))
MIN_INSYNC=$(( REPLICATION < 2 ? REPLICATION : 2 ))
START_TIMEOUT=90
STOP_TIMEOUT=60

# select_node I: the node whose folder, ports and files the functions below use.
select_node() {
  NODE="$1"
  if (( NODES == 1 )); then NODE_DIR="$DIR"; else NODE_DIR="$DIR/node-$NODE"; fi
  PORT="${PORTS[NODE-1]}"
  CPORT="${CPORTS[NODE-1]}"
  DATA="$NODE_DIR/data"
  LOGS="$NODE_DIR/logs"
  PIDFILE="$NODE_DIR/kafka.pid"
  PROPS="$NODE_DIR/server.properties"
}
select_node 1

if (( NODES == 1 )); then
  BROKER_JVM_OPTS=(-Xms256m -Xmx1g)
else
  BROKER_JVM_OPTS=(-Xms128m -Xmx384m -XX:ReservedCodeCacheSize=64m -XX:CICompilerCount=2)
fi
BROKER_JVM_OPTS+=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true)
TOOL_JVM_OPTS=(-Xms64m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true)

# --- prerequisites -----------------------------------------------------------
need_java() { need_java_for "Kafka 4"; }

# --- process state -----------------------------------------------------------
read_pid() { pid_in "$PIDFILE"; }
# The pid is ours only if it is alive and runs kafka.Kafka with this DIR's config.
running_pid() {
  local pid; pid="$(read_pid)"
  runs "$pid" "kafka.Kafka $PROPS" && echo "$pid"
  return 0
}
any_node_running() {
  local node
  for ((node = 1; node <= NODES; node++)); do
    select_node "$node"
    [[ -n "$(running_pid)" ]] && return 0
  done
  return 1
}

# --- CLI tools -----------------------------------------------------------------
run_class() {
  [[ -f "$DIR/tools-log4j2.xml" ]] || { mkdir -p "$DIR"; write_tools_log4j; }
  java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DIR/tools-log4j2.xml" \
    -cp "$LIBS/*" "$@"
}

# --- start ---------------------------------------------------------------------
# Does the broker serve metadata requests? (one short-lived tool JVM, max 30 s)
broker_answers() {
  port_in_use "$PORT" || return 1
  timeout 30 java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DIR/tools-log4j2.xml" \
    -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1
}

# Does every node of the cluster answer as an unfenced broker? The API
# versions tool lists each broker the cluster's metadata names, one line each:
# `127.0.0.1:9094 (id: 2 rack: null isFenced: false) -> (`.
cluster_answers() {
  local p listing
  for p in "${PORTS[@]}"; do port_in_use "$p" || return 1; done
  listing="$(timeout 30 java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DIR/tools-log4j2.xml" \
    -cp "$LIBS/*" org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$BOOTSTRAP" 2>/dev/null)" || return 1
  (( $(grep -c '(id: [0-9]* rack: [^)]*isFenced: false)' <<<"$listing") == NODES ))
}

# launch_node: formats once and starts the selected node in the background.
launch_node() {
  [[ -f "$PIDFILE" ]] && { echo "$PROG: removing stale pid file $PIDFILE"; rm -f "$PIDFILE"; }
  port_in_use "$PORT"  && die "port 127.0.0.1:$PORT is already in use by another process"
  port_in_use "$CPORT" && die "port 127.0.0.1:$CPORT is already in use by another process"
  mkdir -p "$DATA" "$LOGS"
  write_config
  format_once
  # setsid: the broker gets its own session, so it outlives the caller's terminal or
  # job; the inner shell writes its own pid, then execs java (same pid).
  # shellcheck disable=SC2016  # $$ and $1 are for the inner shell
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    java "${BROKER_JVM_OPTS[@]}" \
    "-Xlog:gc*:file=$LOGS/gc.log:time,tags:filecount=5,filesize=20M" \
    -Dlog4j2.configurationFile="$NODE_DIR/log4j2.xml" -Dkafka.logs.dir="$LOGS" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    >"$LOGS/console.out" 2>&1 </dev/null &
}

# Ready: one node answers a metadata request (asked with a tool JVM only once
# it logged that it started, or after 20 s, so as not to slow its start on 2
# cores); a cluster lists every node as an unfenced broker.
ready() {
  if (( NODES > 1 )); then cluster_answers; return; fi
  [[ -n "$(read_pid)" ]] && port_in_use "$PORT" \
    && { tail -c +$((log_offset + 1)) "$LOGS/server.log" 2>/dev/null | grep -q 'Kafka Server started' \
         || (( SECONDS - t0 >= 20 )); } \
    && broker_answers
}

do_start() {
  need_java
  local node pid launched=()
  for ((node = 1; node <= NODES; node++)); do
    select_node "$node"
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
      grep -qxF "listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT" "$PROPS" \
        || die "broker in $NODE_DIR is already running (pid $pid) with other ports ($(grep '^listeners=' "$PROPS")); stop it first"
    fi
  done
  libs_current || do_install
  mkdir -p "$DIR"
  local t0=$SECONDS log_offset=0
  for ((node = 1; node <= NODES; node++)); do
    select_node "$node"
    [[ -n "$(running_pid)" ]] && continue
    if (( NODES == 1 )) && [[ -f "$LOGS/server.log" ]]; then log_offset="$(stat -c %s "$LOGS/server.log")"; fi
    launch_node
    launched+=("$node")
  done
  select_node 1
  if (( ${#launched[@]} == 0 )); then
    echo "$PROG: already running (pid $(running_pid)$( (( NODES == 1 )) || echo " and $((NODES - 1)) more nodes")) on $BOOTSTRAP"
    return 0
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    for node in "${launched[@]}"; do
      select_node "$node"
      pid="$(read_pid)"
      if [[ -n "$pid" ]] && ! alive "$pid"; then
        tail -n 20 "$LOGS/console.out" "$LOGS/server.log" >&2 2>/dev/null || true
        rm -f "$PIDFILE"
        die "node $node exited during startup; see $LOGS/server.log and $LOGS/console.out"
      fi
    done
    select_node 1
    ready && break
    if (( SECONDS >= deadline )); then
      echo "$PROG: $BOOTSTRAP did not answer with all $NODES node(s) within ${START_TIMEOUT}s; stopping what this start launched" >&2
      for node in "${launched[@]}"; do select_node "$node"; stop_node >&2; done
      die "Kafka did not become ready; see server.log and console.out under $DIR"
    fi
    sleep $(( NODES == 1 ? 1 : 2 ))
  done
  if (( NODES == 1 )); then
    echo "$PROG: started (pid $(read_pid)) on $BOOTSTRAP in $((SECONDS - t0)) s, data in $DATA"
  else
    echo "$PROG: started node(s) ${launched[*]} of $NODES on $BOOTSTRAP in $((SECONDS - t0)) s, data in $DIR/node-*/data"
  fi
}

# --- stop / status ---------------------------------------------------------------
# stop_node: stops the selected node (SIGTERM, then SIGKILL after STOP_TIMEOUT).
stop_node() {
  local pid; pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    [[ -f "$PIDFILE" ]] && rm -f "$PIDFILE"
    echo "$PROG: not running$( (( NODES == 1 )) || echo " (node $NODE)")"
    return 0
  fi
  stop_pid "$pid" broker "$STOP_TIMEOUT"
  rm -f "$PIDFILE"
  echo "$PROG: stopped (pid $pid$( (( NODES == 1 )) || echo ", node $NODE"))"
}

# Every node at once: stopped one by one, the last ones would wait for a
# controller quorum that is already gone.
do_stop() {
  local node pid stopping=()
  for ((node = 1; node <= NODES; node++)); do
    select_node "$node"
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
      kill -TERM "$pid" 2>/dev/null || true
      stopping+=("$node:$pid")
    else
      rm -f "$PIDFILE"
    fi
  done
  if (( ${#stopping[@]} == 0 )); then
    echo "$PROG: not running"
    return 0
  fi
  local entry
  for entry in "${stopping[@]}"; do
    select_node "${entry%%:*}"
    wait_exit "${entry#*:}" broker "$STOP_TIMEOUT"
    rm -f "$PIDFILE"
    echo "$PROG: stopped (pid ${entry#*:}$( (( NODES == 1 )) || echo ", node ${entry%%:*}"))"
  done
}

do_stop_node() {
  [[ $# -eq 1 && "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= NODES )) || die "stop-node needs a node number 1-$NODES"
  select_node "$1"
  stop_node
}

do_status() {
  local node pid up=0 lines=()
  for ((node = 1; node <= NODES; node++)); do
    select_node "$node"
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
      up=$((up + 1))
      lines+=("node $node: running (pid $pid) on 127.0.0.1:$PORT, data in $DATA")
    else
      lines+=("node $node: not running (127.0.0.1:$PORT, data in $DATA)")
    fi
  done
  if (( up == 0 )); then echo "not running"; exit 3; fi
  if (( NODES == 1 )); then
    select_node 1
    echo "running (pid $(running_pid)) on $BOOTSTRAP, data in $DATA"
    exit 0
  fi
  printf '%s\n' "${lines[@]}"
  (( up == NODES )) || exit 3
}


case "$CMD" in
  install)       [[ $# -eq 0 ]] || usage; do_install ;;
  start)         [[ $# -eq 0 ]] || usage; do_start ;;
  stop)          [[ $# -eq 0 ]] || usage; do_stop ;;
  stop-node)     do_stop_node "$@" ;;
  status)        [[ $# -eq 0 ]] || usage; do_status ;;
  quorum-leader) [[ $# -eq 0 ]] || usage
                 [[ -f "$STAMP" ]] || die "Kafka is not installed in $LIBS"
                 need_java; do_quorum_leader ;;
  create-topic)  do_create_topic "$@" ;;
  run-class)     [[ $# -ge 1 ]] || usage
                 [[ -f "$STAMP" ]] || die "Kafka is not installed in $LIBS; run: $PROG install $DIR_ARG $PORTS_ARG $CPORTS_ARG"
                 need_java; run_class "$@" ;;
  *)             usage ;;
esac
