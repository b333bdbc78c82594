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

# stop_process NAME: SIGTERM (a clean shutdown: in-flight work is finished
# and committed), then SIGKILL after 30 s.
stop_process() {
  local pidfile="$LOCAL/run/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null && echo "down: $1 did not stop in 30 s; killed" || echo "down: $1 stopped"
  fi
  rm -f "$pidfile"
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
