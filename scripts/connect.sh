#!/usr/bin/env bash
# Run a project-local, standalone Kafka Connect worker (the bench's peers).
#
# Usage: bash scripts/connect.sh COMMAND DIR PORT [ARGS...]
#   DIR    worker folder, e.g. .local/bench/connect
#   PORT   the worker's REST listener, http://127.0.0.1:PORT
#
# Commands:
#   install                        copy the Connect runtime (scripts/connect/runtime.pom.xml)
#                                  into DIR/libs and the Debezium JDBC sink plugin
#                                  (scripts/connect/jdbc-sink.pom.xml) into DIR/plugins, from
#                                  Maven Central; skipped if both match their pom (stamps).
#   start WORKER CONNECTOR...      install if needed, then start ConnectStandalone in the
#                                  background with the worker properties file WORKER and
#                                  the connector properties files CONNECTOR..., and wait
#                                  (max 120 s) until its REST listener answers. The worker
#                                  file says what to connect to; this script appends where
#                                  things live (plugin.path, listeners). Error if this DIR's
#                                  worker is already running (its connectors are fixed at start).
#   stop                           SIGTERM, wait (max 60 s), then SIGKILL. Not an error if it
#                                  is not running.
#   status                         prints "running ..." and exits 0, or "not running", exit 3.
#   pid                            prints the worker's pid (CPU accounting), or exit 3.
# Exit codes: 0 ok, 1 error (message on stderr), 2 usage, 3 not running (status, pid).
#
# Layout inside DIR:
#   libs/                    runtime jars (+ .stamp: hash of the pom they came from)
#   plugins/debezium-jdbc/   the JDBC sink plugin's jars (+ .stamp)
#   worker.properties        written on every start: WORKER + plugin.path + listeners
#   log4j2.xml               worker logging -> logs/connect.log (console stays quiet)
#   logs/                    connect.log, console.out (JVM stdout/stderr)
#   connect.pid              pid of the running worker
#
# Needs java >= 17 and mvn (install: bash scripts/deps.sh). The Kafka version is the
# <kafka.version> property in scripts/connect/runtime.pom.xml (the broker's).
set -euo pipefail

PROG="connect.sh"
die()   { echo "$PROG: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^# Exit codes/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
. "$(dirname "${BASH_SOURCE[0]}")/lib/process.sh"

[[ $# -ge 3 ]] || usage
CMD="$1" DIR_ARG="$2" PORT="$3"
shift 3
[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65536 )) || die "PORT must be a number 1-65535, got '$PORT'"
[[ -n "$DIR_ARG" ]] || die "DIR must not be empty"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNTIME_POM="$SCRIPT_DIR/connect/runtime.pom.xml"
PLUGIN_POM="$SCRIPT_DIR/connect/jdbc-sink.pom.xml"
DIR="$(realpath -m -- "$DIR_ARG")"
LIBS="$DIR/libs"
PLUGINS="$DIR/plugins"
JDBC_PLUGIN="$PLUGINS/debezium-jdbc"
LOGS="$DIR/logs"
PIDFILE="$DIR/connect.pid"
PROPS="$DIR/worker.properties"
START_TIMEOUT=120
STOP_TIMEOUT=60

# One worker, at most 1 GiB of heap (the prototype's and Confluent's default size for a
# standalone worker); G1 as the broker.
WORKER_JVM_OPTS=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true)

need_java() { need_java_for "Kafka Connect 4"; }

pom_stamp() { echo "pom.sha256=$(sha256sum "$1" | cut -d' ' -f1)"; }
current() { stamp_matches "$2" "$(pom_stamp "$1")"; }
installed() { current "$RUNTIME_POM" "$LIBS" && current "$PLUGIN_POM" "$JDBC_PLUGIN"; }

# --- process state -----------------------------------------------------------
read_pid() { pid_in "$PIDFILE"; }
# The pid is ours only if it is alive and runs ConnectStandalone with this DIR's config.
running_pid() {
  local pid; pid="$(read_pid)"
  runs "$pid" "ConnectStandalone $PROPS" && echo "$pid"
  return 0
}

# --- install -------------------------------------------------------------------
do_install() {
  if installed; then
    echo "$PROG: Kafka Connect already installed in $DIR"
    return 0
  fi
  [[ -z "$(running_pid)" ]] || die "worker in $DIR is running with other jars; stop it before re-installing"
  need_java
  mkdir -p "$PLUGINS"
  local t0=$SECONDS
  echo "$PROG: installing Kafka Connect and the Debezium JDBC sink into $DIR (Maven Central) ..."
  current "$RUNTIME_POM" "$LIBS" \
    || maven_jars "$RUNTIME_POM" "$LIBS" "$(pom_stamp "$RUNTIME_POM")" "connect-runtime-*.jar" "$DIR/install.log"
  if ! current "$PLUGIN_POM" "$JDBC_PLUGIN"; then
    maven_jars "$PLUGIN_POM" "$JDBC_PLUGIN" "$(pom_stamp "$PLUGIN_POM")" "debezium-connector-jdbc-*.jar" "$DIR/install.log"
    # The worker provides these; a second copy in the plugin's class loader breaks it.
    rm -f "$JDBC_PLUGIN"/jackson-*.jar "$JDBC_PLUGIN"/slf4j-api-*.jar
  fi
  echo "$PROG: installed ($(find "$LIBS" -name '*.jar' | wc -l) runtime jars, $(find "$JDBC_PLUGIN" -name '*.jar' | wc -l) plugin jars) in $((SECONDS - t0)) s"
}

# --- start ---------------------------------------------------------------------
write_config() {
  local worker="$1"
  {
    cat "$worker"
    # Written by scripts/connect.sh: where things live. Later lines win in a properties file.
    echo
    echo "plugin.path=$PLUGINS"
    echo "listeners=http://127.0.0.1:$PORT"
  } >"$PROPS"
  cat >"$DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/connect.sh: worker logging to $LOGS/connect.log only. -->
<Configuration status="warn">
  <Appenders>
    <File name="CONNECT" fileName="$LOGS/connect.log">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="CONNECT"/></Root>
    <Logger name="org.apache.kafka.clients" level="warn"/>
    <Logger name="org.reflections" level="error"/>
  </Loggers>
</Configuration>
EOF
}

do_start() {
  [[ $# -ge 2 ]] || usage
  local worker connectors=() file
  worker="$(realpath -- "$1")" || die "worker properties $1 not found"
  shift
  for file in "$@"; do
    connectors+=("$(realpath -- "$file")") || die "connector properties $file not found"
  done
  local pid; pid="$(running_pid)"
  [[ -z "$pid" ]] || die "worker in $DIR is already running (pid $pid); stop it first"
  [[ -f "$PIDFILE" ]] && rm -f "$PIDFILE"
  need_java
  port_in_use "$PORT" && die "port 127.0.0.1:$PORT is already in use by another process"
  installed || do_install
  mkdir -p "$LOGS"
  : >"$LOGS/connect.log"
  write_config "$worker"

  local t0=$SECONDS
  # setsid: the worker gets its own session; the inner shell writes its own pid, then
  # execs java (same pid).
  # shellcheck disable=SC2016  # $$ and $1 are for the inner shell
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    java "${WORKER_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$DIR/log4j2.xml" \
    -cp "$LIBS/*" org.apache.kafka.connect.cli.ConnectStandalone "$PROPS" "${connectors[@]}" \
    >"$LOGS/console.out" 2>&1 </dev/null &

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    pid="$(read_pid)"
    if [[ -n "$pid" ]] && ! alive "$pid"; then
      tail -n 20 "$LOGS/console.out" "$LOGS/connect.log" >&2 2>/dev/null || true
      rm -f "$PIDFILE"
      die "worker exited during startup; see $LOGS/connect.log and $LOGS/console.out"
    fi
    if [[ -n "$pid" ]] && curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/" 2>/dev/null; then
      break
    fi
    if (( SECONDS >= deadline )); then
      echo "$PROG: worker did not answer on http://127.0.0.1:$PORT within ${START_TIMEOUT}s; stopping it" >&2
      do_stop >&2
      die "worker did not become ready; see $LOGS/connect.log"
    fi
    sleep 0.2
  done
  echo "$PROG: started (pid $pid) on http://127.0.0.1:$PORT in $((SECONDS - t0)) s"
}

# --- stop / status ---------------------------------------------------------------
do_stop() {
  local pid; pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    [[ -f "$PIDFILE" ]] && rm -f "$PIDFILE"
    echo "$PROG: not running"
    return 0
  fi
  stop_pid "$pid" worker "$STOP_TIMEOUT"
  rm -f "$PIDFILE"
  echo "$PROG: stopped (pid $pid)"
}

do_status() {
  local pid; pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    echo "running (pid $pid) on http://127.0.0.1:$PORT"
    exit 0
  fi
  echo "not running"
  exit 3
}

do_pid() {
  local pid; pid="$(running_pid)"
  [[ -n "$pid" ]] || exit 3
  echo "$pid"
}

case "$CMD" in
  install) [[ $# -eq 0 ]] || usage; do_install ;;
  start)   do_start "$@" ;;
  stop)    [[ $# -eq 0 ]] || usage; do_stop ;;
  status)  [[ $# -eq 0 ]] || usage; do_status ;;
  pid)     [[ $# -eq 0 ]] || usage; do_pid ;;
  *)       usage ;;
esac
