#!/bin/bash
# The Compose stack's topic one-shot: creates the orders topic and its
# dead-letter topic with ORDERSTREAM_PARTITIONS partitions (replication 1: one
# broker), and fails if one exists with another partition count, the way
# scripts/kafka.sh create-topic does for `make run`.
#
# Environment: KAFKA_BOOTSTRAP (kafka:9092), ORDERSTREAM_TOPIC,
# ORDERSTREAM_DLQ_TOPIC, ORDERSTREAM_PARTITIONS (all required).
set -euo pipefail

bootstrap="${KAFKA_BOOTSTRAP:-kafka:9092}"
partitions="${ORDERSTREAM_PARTITIONS:?ORDERSTREAM_PARTITIONS is required}"
topics=("${ORDERSTREAM_TOPIC:?ORDERSTREAM_TOPIC is required}" "${ORDERSTREAM_DLQ_TOPIC:?ORDERSTREAM_DLQ_TOPIC is required}")
kafka_topics=/opt/kafka/bin/kafka-topics.sh

for topic in "${topics[@]}"; do
  "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor 1 >/dev/null
  have="$("$kafka_topics" --bootstrap-server "$bootstrap" --describe --topic "$topic" \
          | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n1)"
  if [[ "$have" != "$partitions" ]]; then
    echo "create-topics: topic $topic exists with $have partitions, not $partitions" >&2
    exit 1
  fi
  echo "create-topics: topic $topic ready ($partitions partitions)"
done
