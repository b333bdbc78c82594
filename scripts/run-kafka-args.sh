#!/usr/bin/env bash
# The arguments of scripts/kafka.sh for `make run`'s Kafka: DIR PORTS
# CONTROLLER_PORTS on one line, for BROKERS nodes (1, the default, to 3).
# One place for the layout that `make run`, `make services` and `make down`
# share: one node in LOCAL/kafka, a cluster in LOCAL/kafka-cluster (a
# single node's KRaft quorum cannot grow into a cluster's, so each keeps its
# own data). Node 1 listens on KAFKA_PORT and KAFKA_CONTROLLER_PORT, nodes 2
# and 3 on ports.env's PORT_RUN_KAFKA_2/3 and PORT_RUN_KAFKA_CONTROLLER_2/3.
#
# Usage: bash scripts/run-kafka-args.sh [BROKERS]   (environment: LOCAL, KAFKA_PORT, KAFKA_CONTROLLER_PORT)
set -euo pipefail
cd "$(dirname "$0")/.."
. ./ports.env
LOCAL="${LOCAL:-.local}"
KAFKA_PORT="${KAFKA_PORT:-$PORT_RUN_KAFKA}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$PORT_RUN_KAFKA_CONTROLLER}"
brokers="${1:-${BROKERS:-1}}"
case "$brokers" in
  1) echo "$LOCAL/kafka $KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
  2) echo "$LOCAL/kafka-cluster $KAFKA_PORT,$PORT_RUN_KAFKA_2 $KAFKA_CONTROLLER_PORT,$PORT_RUN_KAFKA_CONTROLLER_2" ;;
  3) echo "$LOCAL/kafka-cluster $KAFKA_PORT,$PORT_RUN_KAFKA_2,$PORT_RUN_KAFKA_3 $KAFKA_CONTROLLER_PORT,$PORT_RUN_KAFKA_CONTROLLER_2,$PORT_RUN_KAFKA_CONTROLLER_3" ;;
  *) echo "run-kafka-args.sh: BROKERS must be 1, 2 or 3, got '$brokers'" >&2; exit 2 ;;
esac
