#!/usr/bin/env bash
# `make down`: stop the pipeline and the local stack that `make run` started.
# Data is kept. Stopping what is not running is not an error.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCAL="${LOCAL:-.local}"
. ./ports.env
PG_PORT="${PG_PORT:-$PORT_RUN_PG}"
export LOCAL KAFKA_PORT="${KAFKA_PORT:-$PORT_RUN_KAFKA}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$PORT_RUN_KAFKA_CONTROLLER}"

PROG=down
die() { echo "$PROG: error: $*" >&2; exit 1; }
. scripts/lib/process.sh

# stop_process NAME: SIGTERM (a clean shutdown: in-flight work is finished
# and committed), then SIGKILL after 30 s; only if the pid file still names
# the process `make run` started (a pid reused since is left alone).
stop_process() {
  local pidfile="$LOCAL/run/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(pid_in "$pidfile")"
  adopt_pid "$pidfile" "$1"
  if stop_owned "$pidfile" "$1" 30; then
    echo "down: $1 stopped"
  elif [[ -n "$pid" ]] && alive "$pid"; then
    echo "down: $1 not running; its pid file named pid $pid, now another process, left alone"
  fi
}
stop_process producer
stop_process consumer
stop_process lag-exporter
stop_process verify
stop_process prometheus
stop_process alertmanager
[[ -d "$LOCAL/kafka" ]] && bash scripts/kafka.sh stop $(bash scripts/run-kafka-args.sh 1)
[[ -d "$LOCAL/kafka-cluster" ]] && bash scripts/kafka.sh stop $(bash scripts/run-kafka-args.sh 3)
[[ -d "$LOCAL/pg" ]] && bash scripts/postgres.sh stop "$LOCAL/pg" "$PG_PORT"
exit 0
