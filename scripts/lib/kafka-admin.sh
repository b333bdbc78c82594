# Sourced by scripts/kafka.sh: asking a running cluster (its active
# controller) and changing it (topics). Uses kafka.sh's globals and run_class.

# The node id of the active controller, from the quorum's own description
# (clients of a KRaft cluster are never told which node it is).
do_quorum_leader() {
  local controllers status leader
  controllers="$(printf '127.0.0.1:%s,' "${CPORTS[@]}")"
  status="$(run_class org.apache.kafka.tools.MetadataQuorumCommand \
    --bootstrap-controller "${controllers%,}" describe --status)" || die "could not describe the KRaft quorum"
  leader="$(sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' <<<"$status")"
  [[ -n "$leader" ]] || die "the quorum description names no leader: $status"
  echo "$leader"
}

# --- topics ------------------------------------------------------------------------
do_create_topic() {
  [[ $# -eq 2 ]] || usage
  local name="$1" parts="$2"
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "invalid topic name '$name'"
  if ! [[ "$parts" =~ ^[0-9]+$ ]] || (( parts < 1 )); then
    die "PARTITIONS must be a positive number, got '$parts'"
  fi
  any_node_running || die "Kafka in $DIR is not running; start it first: $PROG start $DIR_ARG $PORTS_ARG $CPORTS_ARG"
  run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor "$REPLICATION" >/dev/null \
    || die "could not create topic $name"
  local desc have
  desc="$(run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --describe --topic "$name")" || die "could not describe topic $name"
  have="$(sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' <<<"$desc" | head -n1)"
  [[ "$have" == "$parts" ]] || die "topic $name exists with $have partitions, not $parts"
  echo "$PROG: topic $name ready ($parts partitions, replication $REPLICATION) on $BOOTSTRAP"
}
