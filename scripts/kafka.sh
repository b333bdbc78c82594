#!/usr/bin/env bash
# Run a project-local, single-node Apache Kafka broker (KRaft, broker+controller).
#
# Usage: bash scripts/kafka.sh COMMAND DIR PORT CONTROLLER_PORT [ARGS...]
#   DIR              broker folder, e.g. .local/kafka or .local/test/kafka
#   PORT             client listener, PLAINTEXT://127.0.0.1:PORT (e.g. 9092)
#   CONTROLLER_PORT  KRaft controller listener on 127.0.0.1 (e.g. 9093)
#
# Commands:
#   install                   copy the Kafka jars (scripts/kafka/pom.xml, Maven Central)
#                             into DIR/libs; skipped if DIR/libs matches the pom (stamp).
#   start                     install if needed, format storage once, start the broker in
#                             the background and wait (max 90 s) until it answers.
#                             No-op if this DIR's broker is already running.
#   stop                      SIGTERM, wait (max 60 s), then SIGKILL. Not an error if it
#                             is not running.
#   status                    prints "running ..." and exits 0, or "not running", exit 3.
#   create-topic NAME PARTS   create topic NAME with PARTS partitions (replication 1) if
#                             it does not exist; error if it exists with another count.
#   run-class CLASS [ARGS..]  run a Kafka tool class on DIR/libs with quiet logging, e.g.
#                             org.apache.kafka.tools.ProducerPerformance --help
# Exit codes: 0 ok, 1 error (message on stderr), 2 usage, 3 not running (status only).
#
# Layout inside DIR:
#   libs/               runtime jars (+ .stamp: hash of the pom they came from)
#   server.properties   written on every start
#   log4j2.xml          broker logging -> logs/server.log (console stays quiet)
#   tools-log4j2.xml    CLI tools logging: WARN and above to stderr
#   cluster.id          KRaft cluster id used to format data/ (once)
#   data/               log.dirs (topic data and KRaft metadata)
#   logs/               server.log, gc.log, console.out (JVM stdout/stderr)
#   kafka.pid           pid of the running broker
#
# Needs java >= 17 and mvn (install: bash scripts/deps.sh). The Kafka version is the
# <kafka.version> property in scripts/kafka/pom.xml; editing the pom re-installs libs.
set -euo pipefail

PROG="kafka.sh"
die()   { echo "$PROG: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^# Exit codes/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

[[ $# -ge 4 ]] || usage
CMD="$1" DIR_ARG="$2" PORT="$3" CPORT="$4"
shift 4
valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }
for p in "$PORT" "$CPORT"; do
  valid_port "$p" || die "ports must be numbers 1-65535, got '$p'"
done
[[ "$PORT" != "$CPORT" ]] || die "PORT and CONTROLLER_PORT must differ"
[[ -n "$DIR_ARG" ]] || die "DIR must not be empty"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
DIR="$(realpath -m -- "$DIR_ARG")"
LIBS="$DIR/libs"
STAMP="$LIBS/.stamp"
DATA="$DIR/data"
LOGS="$DIR/logs"
PIDFILE="$DIR/kafka.pid"
PROPS="$DIR/server.properties"
BOOTSTRAP="127.0.0.1:$PORT"
START_TIMEOUT=90
STOP_TIMEOUT=60

BROKER_JVM_OPTS=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true)
TOOL_JVM_OPTS=(-Xms64m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true)

# --- prerequisites -----------------------------------------------------------
need_java() {
  command -v java >/dev/null || die "java not found; Kafka 4 needs Java 17+ (run: bash scripts/deps.sh)"
  local v
  v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  [[ "$v" == 1.* ]] && v="${v#1.}"
  v="${v%%.*}"
  if ! [[ "$v" =~ ^[0-9]+$ ]] || (( v < 17 )); then
    die "java $v found; Kafka 4 needs Java 17+ (run: bash scripts/deps.sh)"
  fi
}

pom_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1; }
pom_stamp()   { echo "kafka.version=$(pom_version) pom.sha256=$(sha256sum "$POM" | cut -d' ' -f1)"; }
libs_current() { [[ -f "$STAMP" && "$(<"$STAMP")" == "$(pom_stamp)" ]]; }

# --- process state -----------------------------------------------------------
read_pid() { if [[ -f "$PIDFILE" ]]; then tr -dc '0-9' <"$PIDFILE"; fi; }
# The pid is ours only if it is alive and runs kafka.Kafka with this DIR's config.
is_our_broker() {
  local pid="$1"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $PROPS"
}
# Alive and not a zombie (PID 1 here may reap orphans only after a delay).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}
running_pid() {
  local pid; pid="$(read_pid)"
  is_our_broker "$pid" && echo "$pid"
  return 0
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- CLI tools -----------------------------------------------------------------
write_tools_log4j() {
  cat >"$DIR/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh: logging for Kafka CLI tools (quiet). -->
<Configuration status="warn">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="warn"><AppenderRef ref="STDERR"/></Root>
  </Loggers>
</Configuration>
EOF
}

run_class() {
  [[ -f "$DIR/tools-log4j2.xml" ]] || write_tools_log4j
  java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DIR/tools-log4j2.xml" \
    -cp "$LIBS/*" "$@"
}

# --- install -------------------------------------------------------------------
do_install() {
  [[ -f "$POM" ]] || die "$POM not found"
  local version; version="$(pom_version)"
  [[ -n "$version" ]] || die "no <kafka.version> in $POM"
  if libs_current; then
    echo "$PROG: Kafka $version already installed in $LIBS"
    return 0
  fi
  [[ -z "$(running_pid)" ]] || die "broker in $DIR is running with other jars; stop it before re-installing"
  command -v mvn >/dev/null || die "mvn not found; run: bash scripts/deps.sh"
  need_java
  mkdir -p "$DIR"
  local tmp="$DIR/libs.new" log="$DIR/install.log" t0=$SECONDS
  rm -rf "$tmp"
  echo "$PROG: installing Kafka $version into $LIBS (Maven Central) ..."
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "mvn could not fetch the Kafka jars (full log: $log); check access to Maven Central and the version in $POM"
  fi
  compgen -G "$tmp/kafka_2.13-$version.jar" >/dev/null || die "mvn finished but $tmp/kafka_2.13-$version.jar is missing; see $log"
  pom_stamp >"$tmp/.stamp"
  # Swap in whole, so that jars of an older version never mix with the new ones.
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  echo "$PROG: installed Kafka $version ($(find "$LIBS" -name '*.jar' | wc -l) jars) in $((SECONDS - t0)) s"
}

# --- start ---------------------------------------------------------------------
write_config() {
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh on every start; edits here are overwritten.
node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$CPORT
log.dirs=$DATA
num.partitions=6
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF

  cat >"$DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh: broker logging to $LOGS/server.log only. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="SERVER" fileName="$LOGS/server.log" filePattern="$LOGS/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="100 MB"/></Policies>
      <DefaultRolloverStrategy max="5"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="SERVER"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="org.apache.kafka.clients" level="warn"/>
  </Loggers>
</Configuration>
EOF
  write_tools_log4j
}

format_once() {
  # meta.properties is written by the storage tool: its presence means "formatted".
  [[ -f "$DATA/meta.properties" ]] && return 0
  local id
  if [[ -s "$DIR/cluster.id" ]]; then
    id="$(<"$DIR/cluster.id")"
  else
    id="$(run_class kafka.tools.StorageTool random-uuid 2>"$LOGS/format.log")" \
      || die "StorageTool random-uuid failed; see $LOGS/format.log"
    echo "$id" >"$DIR/cluster.id"
  fi
  run_class kafka.tools.StorageTool format --cluster-id "$id" --config "$PROPS" \
    >>"$LOGS/format.log" 2>&1 \
    || { tail -n 20 "$LOGS/format.log" >&2; die "formatting $DATA failed; see $LOGS/format.log"; }
  echo "$PROG: formatted $DATA (cluster id $id)"
}

# Does the broker serve metadata requests? (one short-lived tool JVM, max 30 s)
broker_answers() {
  port_in_use "$PORT" || return 1
  timeout 30 java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DIR/tools-log4j2.xml" \
    -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1
}

do_start() {
  local pid; pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    grep -qxF "listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT" "$PROPS" \
      || die "broker in $DIR is already running (pid $pid) with other ports ($(grep '^listeners=' "$PROPS")); stop it first"
    echo "$PROG: already running (pid $pid) on $BOOTSTRAP"
    return 0
  fi
  [[ -f "$PIDFILE" ]] && { echo "$PROG: removing stale pid file $PIDFILE"; rm -f "$PIDFILE"; }
  need_java
  port_in_use "$PORT"  && die "port 127.0.0.1:$PORT is already in use by another process"
  port_in_use "$CPORT" && die "port 127.0.0.1:$CPORT is already in use by another process"

  libs_current || do_install
  mkdir -p "$DATA" "$LOGS"
  write_config
  format_once

  local t0=$SECONDS log_offset=0
  [[ -f "$LOGS/server.log" ]] && log_offset="$(stat -c %s "$LOGS/server.log")"
  # setsid: the broker gets its own session, so it outlives the caller's terminal or
  # job; the inner shell writes its own pid, then execs java (same pid).
  # shellcheck disable=SC2016  # $$ and $1 are for the inner shell
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    java "${BROKER_JVM_OPTS[@]}" \
    "-Xlog:gc*:file=$LOGS/gc.log:time,tags:filecount=5,filesize=20M" \
    -Dlog4j2.configurationFile="$DIR/log4j2.xml" -Dkafka.logs.dir="$LOGS" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    >"$LOGS/console.out" 2>&1 </dev/null &

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    pid="$(read_pid)"
    if [[ -n "$pid" ]] && ! alive "$pid"; then
      tail -n 20 "$LOGS/console.out" "$LOGS/server.log" >&2 2>/dev/null || true
      rm -f "$PIDFILE"
      die "broker exited during startup; see $LOGS/server.log and $LOGS/console.out"
    fi
    # Ask with a tool JVM only once the broker logged that it started (or after
    # 20 s, in case the log rolled over), so as not to slow its start on 2 cores.
    if [[ -n "$pid" ]] && port_in_use "$PORT" \
       && { tail -c +$((log_offset + 1)) "$LOGS/server.log" 2>/dev/null | grep -q 'Kafka Server started' \
            || (( SECONDS - t0 >= 20 )); } \
       && broker_answers; then
      break
    fi
    if (( SECONDS >= deadline )); then
      echo "$PROG: broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s; stopping it" >&2
      do_stop >&2
      die "broker did not become ready; see $LOGS/server.log and $LOGS/console.out"
    fi
    sleep 0.5
  done
  echo "$PROG: started (pid $pid) on $BOOTSTRAP in $((SECONDS - t0)) s, data in $DATA"
}

# --- stop / status ---------------------------------------------------------------
do_stop() {
  local pid; pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    [[ -f "$PIDFILE" ]] && rm -f "$PIDFILE"
    echo "$PROG: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    if (( SECONDS >= deadline )); then
      echo "$PROG: broker (pid $pid) did not exit within ${STOP_TIMEOUT}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
  echo "$PROG: stopped (pid $pid)"
}

do_status() {
  local pid; pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    echo "running (pid $pid) on $BOOTSTRAP, data in $DATA"
    exit 0
  fi
  echo "not running"
  exit 3
}

# --- topics ------------------------------------------------------------------------
do_create_topic() {
  [[ $# -eq 2 ]] || usage
  local name="$1" parts="$2"
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "invalid topic name '$name'"
  if ! [[ "$parts" =~ ^[0-9]+$ ]] || (( parts < 1 )); then
    die "PARTITIONS must be a positive number, got '$parts'"
  fi
  [[ -n "$(running_pid)" ]] || die "broker in $DIR is not running; start it first: $PROG start $DIR_ARG $PORT $CPORT"
  run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 >/dev/null \
    || die "could not create topic $name"
  local desc have
  desc="$(run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --describe --topic "$name")" || die "could not describe topic $name"
  have="$(sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' <<<"$desc" | head -n1)"
  [[ "$have" == "$parts" ]] || die "topic $name exists with $have partitions, not $parts"
  echo "$PROG: topic $name ready ($parts partitions) on $BOOTSTRAP"
}

case "$CMD" in
  install)      [[ $# -eq 0 ]] || usage; do_install ;;
  start)        [[ $# -eq 0 ]] || usage; do_start ;;
  stop)         [[ $# -eq 0 ]] || usage; do_stop ;;
  status)       [[ $# -eq 0 ]] || usage; do_status ;;
  create-topic) do_create_topic "$@" ;;
  run-class)    [[ $# -ge 1 ]] || usage
                [[ -f "$STAMP" ]] || die "Kafka is not installed in $LIBS; run: $PROG install $DIR_ARG $PORT $CPORT"
                need_java; run_class "$@" ;;
  *)            usage ;;
esac
