#!/usr/bin/env bash
# `make run`: start the local stack and the pipeline, load the inbox, wait
# until the consumer has caught up, and print a summary.
#
# Idempotent: what already runs is left alone, what is missing is started (so
# after a process was killed, running this again brings it back).
#
# Sample orders (orderstream-gen, DEFAULT_INBOX/SAMPLE_FILE) are generated
# only by `make demo`, or when the default inbox does not exist yet and the
# warehouse holds no order (a fresh clone's first `make run`). Any other
# missing inbox is an error naming it, before anything starts: a mistyped
# path must never fill the warehouse with made-up orders.
#
# Settings come from the environment (the Makefile passes them):
#   LOCAL        state folder (default .local)
#   INBOX        folder the producer watches (default data/inbox); it must exist, except
#                the default one on a first run (below)
#   ARCHIVE      folder processed exports are moved to (the producer's --archive-dir; off by default)
#   ARCHIVE_AFTER  the producer moves delivered files idle this long into ARCHIVE (e.g. 10m; off by default)
#   BROKERS      Kafka nodes: 1 (default) or 3, a local KRaft cluster whose topics are
#                replicated 3 times with min.insync.replicas=2 (scripts/run-kafka-args.sh;
#                nodes 2 and 3 on KAFKA_2_PORT, KAFKA_3_PORT and their _CONTROLLER_PORT)
#   PG_PORT, KAFKA_PORT, KAFKA_CONTROLLER_PORT, PARTITIONS, PROFILE (release|debug)
#   PRODUCER_METRICS_PORT, CONSUMER_METRICS_PORT, LAG_EXPORTER_METRICS_PORT, VERIFY_METRICS_PORT,
#   PROMETHEUS_PORT, ALERTMANAGER_PORT
#   VERIFY_EVERY  how often orderstream-verify accounts for every export line (default 10m;
#                its metrics feed the OrderstreamLinesMissing alert)
#   (the ports' defaults are in ports.env)
#   DEMO         1 (`make demo`): sample orders into the default inbox, then run
#   SAMPLE_ORDERS  how many sample orders (default 5000)
#   CATCH_UP_TIMEOUT  seconds to wait for the pipeline to catch up (default 300)
#   ALERTMANAGER_CONFIG  Alertmanager's configuration (default compose/alertmanager/alertmanager.yml:
#                alerts kept for `make status` and amtool; alertmanager.example.yml shows receivers)
#   RUNBOOK_BASE_URL  where docs/operations.md is served, the start of every alert's runbook_url
#                (default file://<this checkout>/docs/operations.md)
#
# Needs cargo and rustc at least the workspace's rust-version (Cargo.toml);
# without them it stops at once saying how to install them
# (scripts/lib/toolchain.sh, tested by scripts/test-toolchain.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL="${LOCAL:-.local}"
INBOX="${INBOX:-data/inbox}"
ARCHIVE="${ARCHIVE:-}"
ARCHIVE_AFTER="${ARCHIVE_AFTER:-}"
. ./ports.env
PG_PORT="${PG_PORT:-$PORT_RUN_PG}"
KAFKA_PORT="${KAFKA_PORT:-$PORT_RUN_KAFKA}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$PORT_RUN_KAFKA_CONTROLLER}"
PARTITIONS="${PARTITIONS:-6}"
PROFILE="${PROFILE:-release}"
SAMPLE_ORDERS="${SAMPLE_ORDERS:-5000}"
PRODUCER_METRICS_PORT="${PRODUCER_METRICS_PORT:-$PORT_RUN_PRODUCER_METRICS}"
CONSUMER_METRICS_PORT="${CONSUMER_METRICS_PORT:-$PORT_RUN_CONSUMER_METRICS}"
LAG_EXPORTER_METRICS_PORT="${LAG_EXPORTER_METRICS_PORT:-$PORT_RUN_LAG_EXPORTER_METRICS}"
VERIFY_METRICS_PORT="${VERIFY_METRICS_PORT:-$PORT_RUN_VERIFY_METRICS}"
VERIFY_EVERY="${VERIFY_EVERY:-10m}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-$PORT_RUN_PROMETHEUS}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-$PORT_RUN_ALERTMANAGER}"
ALERTMANAGER_CONFIG="${ALERTMANAGER_CONFIG:-compose/alertmanager/alertmanager.yml}"
RUNBOOK_BASE_URL="${RUNBOOK_BASE_URL:-file://$PWD/docs/operations.md}"
CATCH_UP_TIMEOUT="${CATCH_UP_TIMEOUT:-300}"
BROKERS="${BROKERS:-1}"
[[ "$BROKERS" == 1 || "$BROKERS" == 3 ]] || { echo "run: error: BROKERS must be 1 or 3, got '$BROKERS'" >&2; exit 2; }

PROG=run
say() { echo "$PROG: $*"; }
die() { echo "$PROG: error: $*" >&2; exit 1; }
# Pid files and background processes (start_background, owned_pid).
. scripts/lib/process.sh

# cargo and rustc at least the workspace's rust-version, before anything starts.
. scripts/lib/toolchain.sh
need_rust_toolchain

DEFAULT_INBOX=data/inbox
SAMPLE_FILE=sample-orders.csv
DEMO="${DEMO:-}"
is_default_inbox() { [[ "$(realpath -m "$INBOX")" == "$(realpath -m "$DEFAULT_INBOX")" ]]; }
[[ -z "$DEMO" || "$DEMO" == 0 ]] && DEMO=""
if [[ -n "$DEMO" ]]; then
  is_default_inbox || die "\`make demo\` loads sample orders into the default inbox $DEFAULT_INBOX only, not INBOX=$INBOX; nothing was started"
  for export in "$INBOX"/*.csv; do
    [[ -e "$export" && "$(basename "$export")" != "$SAMPLE_FILE" ]] || continue
    die "$INBOX holds exports besides the sample ($(basename "$export")): the demo would mix made-up orders with them; nothing was started"
  done
fi
# Whether sample orders are to be generated; decided once the database answers.
first_run_sample=""
if [[ ! -e "$INBOX" ]]; then
  if [[ -n "$DEMO" ]] || is_default_inbox; then
    first_run_sample=1
  else
    die "inbox $INBOX does not exist; nothing was started. Create it and put the exports there (mkdir -p '$INBOX'), or leave INBOX out to use the default inbox $DEFAULT_INBOX (\`make demo\` fills it with sample orders)"
  fi
elif [[ ! -d "$INBOX" ]]; then
  die "inbox $INBOX is not a folder; nothing was started"
fi

# One Kafka layout at a time: a single node and a cluster share port KAFKA_PORT.
read -r -a KAFKA_ARGS <<<"$(bash scripts/run-kafka-args.sh "$BROKERS")"
read -r -a OTHER_KAFKA_ARGS <<<"$(bash scripts/run-kafka-args.sh "$(( BROKERS == 1 ? 3 : 1 ))")"
if [[ "$(bash scripts/kafka.sh status "${OTHER_KAFKA_ARGS[@]}" 2>/dev/null)" != "not running" ]]; then
  die "Kafka runs with another number of brokers (in ${OTHER_KAFKA_ARGS[0]}); \`make down\` first, then \`make run BROKERS=$BROKERS\`"
fi

bash scripts/deps.sh >/dev/null
bash scripts/postgres.sh start "$LOCAL/pg" "$PG_PORT"
bash scripts/kafka.sh start "${KAFKA_ARGS[@]}"

# Only the pipeline's binaries: never the test-only ones (e2e, chaos).
PIPELINE_PACKAGES=(-p orderstream-producer -p orderstream-consumer -p orderstream-lag-exporter
                   -p orderstream-analytics -p orderstream-generator -p orderstream-status
                   -p orderstream-verify)
if [[ "$PROFILE" == release ]]; then
  cargo build --release --bins --quiet "${PIPELINE_PACKAGES[@]}"
  BIN=target/release
else
  cargo build --bins --quiet "${PIPELINE_PACKAGES[@]}"
  BIN=target/debug
fi

ORDERSTREAM_DATABASE_URL="$(bash scripts/postgres.sh url "$LOCAL/pg" "$PG_PORT")"
ORDERSTREAM_KAFKA_BROKERS="$(IFS=, read -r -a ports <<<"${KAFKA_ARGS[1]}"; printf '127.0.0.1:%s,' "${ports[@]}")"
ORDERSTREAM_KAFKA_BROKERS="${ORDERSTREAM_KAFKA_BROKERS%,}"

# Sample orders go only into a warehouse that holds none but sample ones.
# Orders from elsewhere: a first run's missing default inbox is an error
# like any missing inbox, and the demo refuses to mix.
if [[ -n "$first_run_sample$DEMO" ]]; then
  other_orders=0
  if [[ "$(psql "$ORDERSTREAM_DATABASE_URL" -Atc "SELECT to_regclass('orders') IS NOT NULL")" == t ]]; then
    other_orders="$(psql "$ORDERSTREAM_DATABASE_URL" -Atc \
      "SELECT count(*) FROM orders WHERE source_file NOT LIKE '%/$SAMPLE_FILE'")"
  fi
  if (( other_orders > 0 )); then
    [[ -n "$DEMO" ]] && die "the warehouse ($LOCAL/pg) holds $other_orders orders that are not sample orders: the demo would mix made-up orders with them. \`make clean YES=1\` deletes the warehouse first"
    die "inbox $INBOX does not exist and the warehouse ($LOCAL/pg) already holds $other_orders orders, so no sample orders are made. Create it and put the exports there (mkdir -p '$INBOX'), or name yours with INBOX=/path"
  fi
fi
if [[ -n "$first_run_sample$DEMO" && ! -e "$INBOX/$SAMPLE_FILE" ]]; then
  mkdir -p "$INBOX"
  say "generating $SAMPLE_ORDERS sample orders into $INBOX/$SAMPLE_FILE (made up, for a demo: before loading real exports, \`make clean YES=1\` and remove that file)"
  "$BIN/orderstream-gen" --orders "$SAMPLE_ORDERS" --output "$INBOX/$SAMPLE_FILE"
fi
mkdir -p "$LOCAL/run" "$LOCAL/log"
INBOX="$(realpath "$INBOX")"
STATE_DIR="$(realpath -m "$LOCAL/state/producer")"
cat > "$LOCAL/env" <<ENV
# Written by \`make run\`: source it (. $LOCAL/env) to reach the local stack.
export ORDERSTREAM_DATABASE_URL='$ORDERSTREAM_DATABASE_URL'
export ORDERSTREAM_KAFKA_BROKERS='$ORDERSTREAM_KAFKA_BROKERS'
export ORDERSTREAM_INBOX='$INBOX'
export ORDERSTREAM_STATE_DIR='$STATE_DIR'
export ORDERSTREAM_PARTITIONS='$PARTITIONS'
export ORDERSTREAM_PRODUCER_METRICS_ADDR='127.0.0.1:$PRODUCER_METRICS_PORT'
export ORDERSTREAM_CONSUMER_METRICS_ADDR='127.0.0.1:$CONSUMER_METRICS_PORT'
export ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR='127.0.0.1:$LAG_EXPORTER_METRICS_PORT'
export ORDERSTREAM_VERIFY_METRICS_ADDR='127.0.0.1:$VERIFY_METRICS_PORT'
export PROMETHEUS_URL='http://127.0.0.1:$PROMETHEUS_PORT'
export ORDERSTREAM_ALERTMANAGER_URL='http://127.0.0.1:$ALERTMANAGER_PORT'
ENV
if [[ -n "$ARCHIVE" ]]; then
  mkdir -p "$ARCHIVE"
  echo "export ORDERSTREAM_ARCHIVE_DIR='$(realpath "$ARCHIVE")'" >> "$LOCAL/env"
fi
if [[ -n "$ARCHIVE_AFTER" ]]; then
  [[ -n "$ARCHIVE" ]] || die "ARCHIVE_AFTER=$ARCHIVE_AFTER needs ARCHIVE=folder"
  echo "export ORDERSTREAM_ARCHIVE_AFTER='$ARCHIVE_AFTER'" >> "$LOCAL/env"
fi
# shellcheck disable=SC1091
. "$LOCAL/env"

compgen -G "$INBOX/*.csv" >/dev/null || say "inbox $INBOX holds no export (*.csv) yet: the producer loads each one put there"
if [[ -f "$INBOX/$SAMPLE_FILE" ]] && compgen -G "$INBOX/*.csv" | grep -qv "/$SAMPLE_FILE\$"; then
  say "warning: $INBOX holds made-up sample orders ($SAMPLE_FILE) beside other exports; they all go into one warehouse"
fi

# start_once NAME COMMAND...: starts the command in the background unless its
# pid file names a live process that this script started (owned_pid).
start_once() {
  local name="$1" pidfile="$LOCAL/run/$1.pid" pid
  shift
  adopt_pid "$pidfile" "$name"
  pid="$(owned_pid "$pidfile")"
  if [[ -n "$pid" ]]; then
    say "$name already running (pid $pid)"
    return
  fi
  start_background "$pidfile" "$LOCAL/log/$name.log" "$@"
  say "$name started (pid $(pid_in "$pidfile")), log in $LOCAL/log/$name.log"
}
start_once producer "$BIN/orderstream-producer"
start_once consumer "$BIN/orderstream-consumer"
start_once lag-exporter "$BIN/orderstream-lag-exporter"
# Every export line accounted for against PostgreSQL, again every VERIFY_EVERY
# (`make verify` runs it once, on demand).
start_once verify "$BIN/orderstream-verify" --every "$VERIFY_EVERY"

# Alertmanager (Debian's binary is prometheus-alertmanager): one instance,
# so no cluster port (its default, 9094, is a Kafka node's under BROKERS=3).
[[ -f "$ALERTMANAGER_CONFIG" ]] || die "ALERTMANAGER_CONFIG=$ALERTMANAGER_CONFIG does not exist"
amtool check-config "$ALERTMANAGER_CONFIG" >/dev/null || die "amtool check-config rejected $ALERTMANAGER_CONFIG"
mkdir -p "$LOCAL/alertmanager"
start_once alertmanager prometheus-alertmanager --config.file="$(realpath "$ALERTMANAGER_CONFIG")" \
  --storage.path="$LOCAL/alertmanager/data" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
  --cluster.listen-address=

# Prometheus: the stack's scrape config and rules, with the Compose service
# names pointed at this machine's ports; alerts go to the Alertmanager above,
# their runbook links start with RUNBOOK_BASE_URL.
mkdir -p "$LOCAL/prometheus"
rm -rf "$LOCAL/prometheus/rules" && cp -r compose/prometheus/rules "$LOCAL/prometheus/rules"
sed -e "s/producer:9101/127.0.0.1:$PRODUCER_METRICS_PORT/" \
    -e "s/consumer:9102/127.0.0.1:$CONSUMER_METRICS_PORT/" \
    -e "s/lag-exporter:9103/127.0.0.1:$LAG_EXPORTER_METRICS_PORT/" \
    -e "s/verify:9104/127.0.0.1:$VERIFY_METRICS_PORT/" \
    -e "s/alertmanager:9093/127.0.0.1:$ALERTMANAGER_PORT/" \
    compose/prometheus/prometheus.yml > "$LOCAL/prometheus/prometheus.yml"
start_once prometheus env RUNBOOK_BASE_URL="$RUNBOOK_BASE_URL" prometheus \
  --config.file="$LOCAL/prometheus/prometheus.yml" --enable-feature=expand-external-labels \
  --storage.tsdb.path="$LOCAL/prometheus/data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"

# Caught up: every inbox file delivered to Kafka (a last line without its
# newline once the file is finished: --close-inactive), none the producer
# cannot open, the producer and consumer answering, and no lag between
# Kafka's high watermarks and the offsets stored in PostgreSQL, for the
# orders and the dead-letter intake. `orderstream-status
# --progress` judges it (exit 0) and prints one line per look: orders in
# PostgreSQL of the lines to load, rate, time left (its samples for the rate
# in $LOCAL/run/progress.json). A look takes well under a second, so a line
# comes at least every 2 s.
progress_state="$LOCAL/run/progress.json"
rm -f "$progress_state"
deadline=$((SECONDS + CATCH_UP_TIMEOUT))
while :; do
  if progress="$("$BIN/orderstream-status" --progress "$progress_state")"; then
    say "$progress"
    break
  fi
  say "$progress"
  (( SECONDS < deadline )) || die "not caught up after ${CATCH_UP_TIMEOUT}s; see $LOCAL/log/ and \`make status\`"
  for name in producer consumer lag-exporter verify prometheus alertmanager; do
    [[ -n "$(owned_pid "$LOCAL/run/$name.pid")" ]] || die "$name exited; see $LOCAL/log/$name.log"
  done
  sleep 1
done

"$BIN/orderstream-analytics" report --database-url "$ORDERSTREAM_DATABASE_URL" --output "$LOCAL/report/index.html" >/dev/null
rows="$(psql "$ORDERSTREAM_DATABASE_URL" -Atc 'SELECT count(*) FROM orders')"
dead="$(bash scripts/kafka.sh run-class "${KAFKA_ARGS[@]}" org.apache.kafka.tools.GetOffsetShell \
          --bootstrap-server "$ORDERSTREAM_KAFKA_BROKERS" --topic orders.dlq 2>/dev/null | awk -F: '{ sum += $3 } END { print sum + 0 }')"
# The made-up order to append is offered for the sample file only: appended
# to a real export, it would be a fake order in the warehouse.
if [[ -f "$INBOX/$SAMPLE_FILE" ]]; then
  try_it="$(cat <<TRY
Append a made-up order to the sample file and see it arrive within a second:
  echo "9000001,42,$(date -u +'%Y-%m-%d %H:%M'),19.90,2.5" >> $INBOX/$SAMPLE_FILE
  . $LOCAL/env && psql "\$ORDERSTREAM_DATABASE_URL" -c 'SELECT * FROM orders WHERE id = 9000001'
The sample orders are made up: before loading real exports, \`make clean YES=1\`
and remove $INBOX/$SAMPLE_FILE.
TRY
)"
else
  try_it="Lines appended to an export in the inbox, and exports put there, arrive within a
second; \`make status\` shows each file's delivery."
fi
cat <<SUMMARY

orderstream is running and has caught up.
  orders in PostgreSQL:  $rows
  dead letters:          $dead   (topic orders.dlq)
  consumer lag:          0   (\`make status\` shows files, lag and dead letters at any time)
  Kafka:                 $ORDERSTREAM_KAFKA_BROKERS  ($BROKERS broker(s); topics replicated $BROKERS times$( (( BROKERS == 1 )) || echo ", min.insync.replicas 2"))
  inbox:                 $INBOX
  logs:                  $LOCAL/log/
  analysis report:       $LOCAL/report/index.html  (\`make report\` renders it again)
  Prometheus:            http://127.0.0.1:$PROMETHEUS_PORT  (rules: /alerts)
  Alertmanager:          http://127.0.0.1:$ALERTMANAGER_PORT  (firing alerts also in \`make status\`; receivers: docs/operations.md#receivers)
  metrics:               producer :$PRODUCER_METRICS_PORT, consumer :$CONSUMER_METRICS_PORT, lag exporter :$LAG_EXPORTER_METRICS_PORT, verify (every $VERIFY_EVERY) :$VERIFY_METRICS_PORT  (/metrics, /healthz, /readyz)

$try_it
Stop everything with \`make down\` (data kept); \`make clean\` deletes the warehouse (asks first).
SUMMARY
