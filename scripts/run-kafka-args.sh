#!/usr/bin/env bash
# The arguments of scripts/kafka.sh for `make run`'s Kafka: DIR PORTS
# CONTROLLER_PORTS on one line, for BROKERS nodes (1, the default, or 3).
# One place for the layout that `make run`, `make services` and `make down`
# share: one node in LOCAL/kafka, a cluster in LOCAL/kafka-cluster (a
# single node's KRaft quorum cannot grow into a cluster's, so each keeps its
# own data). Node 1 listens on KAFKA_PORT and KAFKA_CONTROLLER_PORT, nodes 2
# and 3 on KAFKA_2_PORT, KAFKA_2_CONTROLLER_PORT, KAFKA_3_PORT and
# KAFKA_3_CONTROLLER_PORT (defaults: ports.env's PORT_RUN_KAFKA_2/3 and
# PORT_RUN_KAFKA_CONTROLLER_2/3).
#
# Usage: bash scripts/run-kafka-args.sh [BROKERS]   (environment: LOCAL, BROKERS and the ports above)
set -euo pipefail
cd "$(dirname "$0")/.."
. ./ports.env
LOCAL="${LOCAL:-.local}"
KAFKA_PORT="${KAFKA_PORT:-$PORT_RUN_KAFKA}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$PORT_RUN_KAFKA_CONTROLLER}"
KAFKA_2_PORT="${KAFKA_2_PORT:-$PORT_RUN_KAFKA_2}"
KAFKA_2_CONTROLLER_PORT="${KAFKA_2_CONTROLLER_PORT:-$PORT_RUN_KAFKA_CONTROLLER_2}"
KAFKA_3_PORT="${KAFKA_3_PORT:-$PORT_RUN_KAFKA_3}"
KAFKA_3_CONTROLLER_PORT="${KAFKA_3_CONTROLLER_PORT:-$PORT_RUN_KAFKA_CONTROLLER_3}"
brokers="${1:-${BROKERS:-1}}"
case "$brokers" in
  1) echo "$LOCAL/kafka $KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
  3) echo "$LOCAL/kafka-cluster $KAFKA_PORT,$KAFKA_2_PORT,$KAFKA_3_PORT $KAFKA_CONTROLLER_PORT,$KAFKA_2_CONTROLLER_PORT,$KAFKA_3_CONTROLLER_PORT" ;;
  *) echo "run-kafka-args.sh: BROKERS must be 1 or 3, got '$brokers'" >&2; exit 2 ;;
esac
