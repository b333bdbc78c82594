# Sourced by scripts/kafka.sh: the files a node runs from, written on every
# start (server.properties, broker and tool logging) and its storage,
# formatted once. Uses kafka.sh's node variables (select_node) and globals.

# --- CLI tools' logging -----------------------------------------------------------
write_tools_log4j() {
  cat >"$DIR/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh: logging for Kafka CLI tools (quiet). -->
<Configuration status="warn">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="warn"><AppenderRef ref="STDERR"/></Root>
  </Loggers>
</Configuration>
EOF
}

# --- a node's files ---------------------------------------------------------------
write_config() {
  mkdir -p "$NODE_DIR"
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh on every start; edits here are overwritten.
node.id=$NODE
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=$VOTERS
log.dirs=$DATA
num.partitions=6
default.replication.factor=$REPLICATION
min.insync.replicas=$MIN_INSYNC
unclean.leader.election.enable=false
offsets.topic.replication.factor=$REPLICATION
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=$MIN_INSYNC
share.coordinator.state.topic.replication.factor=$REPLICATION
share.coordinator.state.topic.min.isr=$MIN_INSYNC
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=$(( NODES == 1 ? 4 : 2 ))
num.recovery.threads.per.data.dir=1
EOF
  # A node back from a crash takes its partitions' leadership back within
  # seconds, not the default 5 minutes, so leaders stay spread over the nodes.
  (( NODES == 1 )) || echo "leader.imbalance.check.interval.seconds=10" >>"$PROPS"

  cat >"$NODE_DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh: broker logging to $LOGS/server.log only. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="SERVER" fileName="$LOGS/server.log" filePattern="$LOGS/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="100 MB"/></Policies>
      <DefaultRolloverStrategy max="5"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="SERVER"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="org.apache.kafka.clients" level="warn"/>
  </Loggers>
</Configuration>
EOF
  write_tools_log4j
}

format_once() {
  # meta.properties is written by the storage tool: its presence means "formatted".
  [[ -f "$DATA/meta.properties" ]] && return 0
  local id
  if [[ -s "$DIR/cluster.id" ]]; then
    id="$(<"$DIR/cluster.id")"
  else
    id="$(run_class kafka.tools.StorageTool random-uuid 2>"$LOGS/format.log")" \
      || die "StorageTool random-uuid failed; see $LOGS/format.log"
    echo "$id" >"$DIR/cluster.id"
  fi
  run_class kafka.tools.StorageTool format --cluster-id "$id" --config "$PROPS" \
    >>"$LOGS/format.log" 2>&1 \
    || { tail -n 20 "$LOGS/format.log" >&2; die "formatting $DATA failed; see $LOGS/format.log"; }
  echo "$PROG: formatted $DATA (cluster id $id)"
}
