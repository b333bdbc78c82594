#!/usr/bin/env bash
# `make chaos` / `make soak`: the reliability suite on its own PostgreSQL and
# Kafka (ports apart from `make run` and `make test`).
#
#   scripts/chaos.sh run [--fast] [--only 1,12a,15]
#   scripts/chaos.sh soak [--minutes 30] [--rate 1000]
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

if [ -z "${ORDERSTREAM_TEST_DATABASE_URL:-}" ]; then
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
