#!/usr/bin/env bash
# `make chaos` / `make soak`: the reliability suite on its own PostgreSQL and
# Kafka (ports apart from `make run` and `make test`).
#
#   scripts/chaos.sh run [--fast] [--only 1,12a,15]
#   scripts/chaos.sh soak [--duration 30m] [--rate 1000]
#   scripts/chaos.sh cluster [--fast] [--only c1,c5]
#
# `cluster` (`make chaos-cluster`) runs on a three-node Kafka cluster and a
# PostgreSQL of its own under CHAOS_CLUSTER_LOCAL (.local/chaos-cluster), on
# ports.env's PORT_CHAOS_CLUSTER_* (overrides: CHAOS_CLUSTER_PG_PORT,
# CHAOS_CLUSTER_KAFKA_PORTS, CHAOS_CLUSTER_KAFKA_CONTROLLER_PORTS, comma-
# separated); both are stopped when it ends.
#
# The binaries are built with the `failpoints` features (crash points driven
# by FAILPOINTS; release builds never have them). Scenario 11 mounts a small
# tmpfs, which needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

. ./ports.env
CHAOS_LOCAL="${CHAOS_LOCAL:-.local/chaos}"
CHAOS_PG_PORT="${CHAOS_PG_PORT:-$PORT_CHAOS_PG}"
CHAOS_KAFKA_PORT="${CHAOS_KAFKA_PORT:-$PORT_CHAOS_KAFKA}"
CHAOS_KAFKA_CONTROLLER_PORT="${CHAOS_KAFKA_CONTROLLER_PORT:-$PORT_CHAOS_KAFKA_CONTROLLER}"
FAILPOINT_FEATURES="orderstream-producer/failpoints,orderstream-consumer/failpoints"

if [ "${1:-}" = cluster ]; then
  CHAOS_CLUSTER_LOCAL="${CHAOS_CLUSTER_LOCAL:-.local/chaos-cluster}"
  CHAOS_CLUSTER_PG_PORT="${CHAOS_CLUSTER_PG_PORT:-$PORT_CHAOS_CLUSTER_PG}"
  CHAOS_CLUSTER_KAFKA_PORTS="${CHAOS_CLUSTER_KAFKA_PORTS:-$PORT_CHAOS_CLUSTER_KAFKA_1,$PORT_CHAOS_CLUSTER_KAFKA_2,$PORT_CHAOS_CLUSTER_KAFKA_3}"
  CHAOS_CLUSTER_KAFKA_CONTROLLER_PORTS="${CHAOS_CLUSTER_KAFKA_CONTROLLER_PORTS:-$PORT_CHAOS_CLUSTER_KAFKA_CONTROLLER_1,$PORT_CHAOS_CLUSTER_KAFKA_CONTROLLER_2,$PORT_CHAOS_CLUSTER_KAFKA_CONTROLLER_3}"
  KAFKA_CLUSTER=("$CHAOS_CLUSTER_LOCAL/kafka" "$CHAOS_CLUSTER_KAFKA_PORTS" "$CHAOS_CLUSTER_KAFKA_CONTROLLER_PORTS")
  stop_cluster_services() {
    bash scripts/kafka.sh stop "${KAFKA_CLUSTER[@]}" || true
    bash scripts/postgres.sh stop "$CHAOS_CLUSTER_LOCAL/pg" "$CHAOS_CLUSTER_PG_PORT" || true
  }
  trap stop_cluster_services EXIT
  bash scripts/deps.sh
  bash scripts/postgres.sh start "$CHAOS_CLUSTER_LOCAL/pg" "$CHAOS_CLUSTER_PG_PORT"
  bash scripts/kafka.sh start "${KAFKA_CLUSTER[@]}"
  ORDERSTREAM_TEST_DATABASE_URL="$(bash scripts/postgres.sh url "$CHAOS_CLUSTER_LOCAL/pg" "$CHAOS_CLUSTER_PG_PORT")"
  ORDERSTREAM_TEST_KAFKA_BROKERS="$(IFS=, read -r -a ports <<<"$CHAOS_CLUSTER_KAFKA_PORTS"; printf '127.0.0.1:%s,' "${ports[@]}")"
  ORDERSTREAM_TEST_KAFKA_BROKERS="${ORDERSTREAM_TEST_KAFKA_BROKERS%,}"
  ORDERSTREAM_CHAOS_KAFKA_DIR="$(realpath -m "${KAFKA_CLUSTER[0]}")"
  ORDERSTREAM_CHAOS_KAFKA_PORTS="$CHAOS_CLUSTER_KAFKA_PORTS"
  ORDERSTREAM_CHAOS_KAFKA_CONTROLLER_PORTS="$CHAOS_CLUSTER_KAFKA_CONTROLLER_PORTS"
  export ORDERSTREAM_TEST_DATABASE_URL ORDERSTREAM_TEST_KAFKA_BROKERS ORDERSTREAM_CHAOS_KAFKA_DIR \
    ORDERSTREAM_CHAOS_KAFKA_PORTS ORDERSTREAM_CHAOS_KAFKA_CONTROLLER_PORTS
elif [ -z "${ORDERSTREAM_TEST_DATABASE_URL:-}" ]; then
  . scripts/test-services.sh
  SERVICES=("$CHAOS_LOCAL" "$CHAOS_PG_PORT" "$CHAOS_KAFKA_PORT" "$CHAOS_KAFKA_CONTROLLER_PORT")
  trap 'stop_test_services "${SERVICES[@]}"' EXIT
  start_test_services "${SERVICES[@]}"
fi

# CHAOS_TARGET_DIR keeps these builds apart from other builds running at the same time.
target_dir="${CHAOS_TARGET_DIR:-target}"
CARGO_TARGET_DIR="$target_dir" cargo build --workspace --bins --features "$FAILPOINT_FEATURES"
case "$target_dir" in
  /*) export ORDERSTREAM_BIN_DIR="$target_dir/debug" ;;
  *) export ORDERSTREAM_BIN_DIR="$PWD/$target_dir/debug" ;;
esac
started=$(date +%s)
status=0
"$target_dir/debug/orderstream-chaos" "$@" || status=$?
echo "chaos: took $(( $(date +%s) - started )) s"
exit "$status"
