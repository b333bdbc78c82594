#!/bin/bash
# The Compose stack's topic one-shot: creates the orders topic and its
# dead-letter topic with ORDERSTREAM_PARTITIONS partitions, replicated
# ORDERSTREAM_REPLICATION times (1: one broker; docker-compose.cluster.yml
# sets 3, with min.insync.replicas=2), and fails if one exists with another
# partition count or replication, the way scripts/kafka.sh create-topic does
# for `make run`.
#
# Environment: KAFKA_BOOTSTRAP (kafka:9092, or a comma-separated list),
# ORDERSTREAM_TOPIC, ORDERSTREAM_DLQ_TOPIC, ORDERSTREAM_PARTITIONS (all
# required), ORDERSTREAM_REPLICATION (default 1).
set -euo pipefail

bootstrap="${KAFKA_BOOTSTRAP:-kafka:9092}"
partitions="${ORDERSTREAM_PARTITIONS:?ORDERSTREAM_PARTITIONS is required}"
replication="${ORDERSTREAM_REPLICATION:-1}"
min_insync=$(( replication < 2 ? replication : 2 ))
topics=("${ORDERSTREAM_TOPIC:?ORDERSTREAM_TOPIC is required}" "${ORDERSTREAM_DLQ_TOPIC:?ORDERSTREAM_DLQ_TOPIC is required}")
kafka_topics=/opt/kafka/bin/kafka-topics.sh

for topic in "${topics[@]}"; do
  "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor "$replication" \
    --config "min.insync.replicas=$min_insync" --config unclean.leader.election.enable=false >/dev/null
  described="$("$kafka_topics" --bootstrap-server "$bootstrap" --describe --topic "$topic")"
  have="$(sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' <<<"$described" | head -n1)"
  replicas="$(sed -n 's/.*ReplicationFactor: *\([0-9]*\).*/\1/p' <<<"$described" | head -n1)"
  if [[ "$have" != "$partitions" ]]; then
    echo "create-topics: topic $topic exists with $have partitions, not $partitions" >&2
    exit 1
  fi
  if [[ "$replicas" != "$replication" ]]; then
    echo "create-topics: topic $topic exists with replication $replicas, not $replication" >&2
    exit 1
  fi
  echo "create-topics: topic $topic ready ($partitions partitions, replication $replication)"
done
