#!/usr/bin/env bash
# `make bench`: orderstream's throughput, latency and memory against the
# limits of its parts, measured in one run on this machine.
#
# Phases (each with a fresh database and fresh topics):
#   copy     psql \copy of the generated file into a table shaped like `orders`
#            (primary key included): PostgreSQL's limit.
#   kafka    the broker's own ProducerPerformance, records of the mean encoded
#            size of ours, acks=all, lz4, idempotent, 6 partitions: Kafka's limit.
#   e2e      producer + consumer group (BENCH_CONSUMERS members, 2 as in the
#            compose deployment): the file renamed into the empty inbox until the
#            last row is committed (cold), then the same file again under another
#            name (re-ingest: newer versions, same values, all unchanged).
#   naive    one INSERT … ON CONFLICT and one commit per record
#            (consumer/examples/naive_upsert.rs), a sample of BENCH_NAIVE_ROWS
#            rows, the rate extrapolated.
#   latency  BENCH_LATENCY_RATE lines/s appended for BENCH_LATENCY_SECONDS;
#            write time per line against orders.written_at.
#   memory   VmHWM of producer and consumer after the cold run and after latency.
# The consumer's and producer's CPU time (and the broker's and PostgreSQL's)
# during the cold run is reported too: it says which component sets the ceiling.
#
# Settings (environment):
#   BENCH_ORDERS           orders generated (default 1000000; quick: 100000)
#   BENCH_NAIVE_ROWS       rows timed for the naive baseline (default 20000)
#   BENCH_LATENCY_SECONDS  length of the latency phase (default 60)
#   BENCH_LATENCY_RATE     lines per second appended (default 5000)
#   BENCH_SEED             generator seed (default 42)
#   BENCH_CONSUMERS        consumer processes in the group (default 2, as compose
#                          deploys; 1 = a single consumer)
#   BENCH_BIN              where the pipeline's binaries are (default target/release;
#                          another folder compares an older build in the same setup)
#   BENCH_PERF             1: perf-sample producer and consumer during the cold run
#                          (top threads/symbols to .local/bench/perf-top.txt)
#   BENCH_PROFILE          1: perf-sample the whole machine with call graphs during
#                          the cold run: CPU share per process and thread, and
#                          flamegraphs of consumer, producer and PostgreSQL
#                          (.local/bench/profile/; needs perf and inferno-flamegraph)
#
# Everything lives in .local/bench/ (own PostgreSQL on :25452, own Kafka on
# :29132/:29133, metrics on ephemeral ports), so `make run` and `make test`
# are never touched. Everything started here is stopped on exit, also on
# failure. The last line printed is machine-readable (`bench: key=value …`);
# the report is also written to .local/bench/report.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${BENCH_ORDERS:-1000000}"
NAIVE_ROWS="${BENCH_NAIVE_ROWS:-20000}"
LAT_SECONDS="${BENCH_LATENCY_SECONDS:-60}"
LAT_RATE="${BENCH_LATENCY_RATE:-5000}"
SEED="${BENCH_SEED:-42}"
CONSUMERS="${BENCH_CONSUMERS:-2}"
[[ "$CONSUMERS" =~ ^[1-6]$ ]] || { echo "bench: BENCH_CONSUMERS must be 1-6 (the topics have 6 partitions)" >&2; exit 2; }
ROOT=.local/bench
PG_DIR="$ROOT/pg" PG_PORT=25452
KAFKA_DIR="$ROOT/kafka" KAFKA_PORT=29132 KAFKA_CPORT=29133
BROKERS="127.0.0.1:$KAFKA_PORT"
WORK="$(realpath -m "$ROOT/work")"
BIN="${BENCH_BIN:-target/release}"
RUN_ID="$(date -u +%Y%m%d%H%M%S)"
CLK_TCK="$(getconf CLK_TCK)"
BENCH_T0=$SECONDS

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
calc() { python3 -c "import sys; print(eval(sys.argv[1]))" "$1"; }

# --- processes we start, stopped on exit ---------------------------------------
STARTED_PIDS=()
SERVICES_STARTED=0
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
  if (( SERVICES_STARTED )); then
    # Quiet on success, so that the summary stays the last line printed.
    bash scripts/kafka.sh stop "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CPORT" >/dev/null || true
    bash scripts/postgres.sh stop "$PG_DIR" "$PG_PORT" >/dev/null || true
  fi
  (( rc == 0 )) || say "failed (exit $rc); logs in $WORK/"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- services ------------------------------------------------------------------
say "building (release)"
# Only what the bench runs: a half-finished crate elsewhere in the workspace
# must not stop it.
cargo build --release --quiet -p orderstream-producer -p orderstream-consumer -p orderstream-generator --bins
cargo build --release --quiet -p orderstream-consumer --example naive_upsert

# Fresh services: a stale cluster from an aborted run is stopped and wiped.
bash scripts/kafka.sh stop "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CPORT" >/dev/null
bash scripts/postgres.sh stop "$PG_DIR" "$PG_PORT" >/dev/null
rm -rf "$KAFKA_DIR/data" "$PG_DIR" "$WORK"
mkdir -p "$WORK"
SERVICES_STARTED=1
bash scripts/postgres.sh start "$PG_DIR" "$PG_PORT" >&2
bash scripts/kafka.sh start "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CPORT" >&2
ADMIN_URL="$(bash scripts/postgres.sh url "$PG_DIR" "$PG_PORT")"
db_url() { echo "${ADMIN_URL%/*}/$1"; }
sql() { local db="$1"; shift; psql -X -q -At -v ON_ERROR_STOP=1 "$(db_url "$db")" "$@"; }
new_db() { sql orderstream -c "CREATE DATABASE $1" >/dev/null; }
kafka_tool() { bash scripts/kafka.sh run-class "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CPORT" "$@"; }

# --- input -----------------------------------------------------------------------
FILE="$WORK/orders.csv"
# One order a minute (the default is one per 30 min): 1,000,000 orders from
# 2022-09-01 end in 2024, never in the future (which would be dead-lettered).
"$BIN/orderstream-gen" --orders "$ORDERS" --seed "$SEED" --interval-secs 60 --output "$FILE"
FILE_BYTES="$(stat -c %s "$FILE")"
VALUE_BYTES="$(target/release/examples/naive_upsert encoded-size "$FILE" | sed -n 's/.*mean_value_bytes=\([0-9.]*\).*/\1/p')"
RECORD_SIZE="$(printf '%.0f' "$VALUE_BYTES")"
say "input: $ORDERS orders, $FILE_BYTES bytes of CSV, mean Kafka value $VALUE_BYTES bytes"

# --- per-process figures --------------------------------------------------------
vmhwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# PostgreSQL: the postmaster (with its reaped children) and every live backend.
pg_ticks() {
  local master total=0 pid
  master="$(sed -n 1p "$PG_DIR/data/postmaster.pid")"
  total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$master/stat")
  for pid in $(pgrep -P "$master"); do total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}
kafka_pid() { tr -dc '0-9' <"$KAFKA_DIR/kafka.pid"; }
metrics_port() { grep -a 'Serving /metrics' "$1" | grep -ao '127\.0\.0\.1:[0-9]*' | head -n1 | cut -d: -f2; }
metric() { # metric PORT NAME_WITH_LABELS -> value (0 if absent)
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v name="$2" '$1 == name { v = $2 } END { print v + 0 }'
}
metric_sum() { # metric_sum PORT NAME -> sum over all label sets
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v name="$2" '$1 == name || index($1, name "{") == 1 { v += $2 } END { print v + 0 }'
}
wait_log() { # wait_log FILE PATTERN SECONDS PID
  local deadline=$((SECONDS + $3))
  until grep -aq -- "$2" "$1" 2>/dev/null; do
    kill -0 "$4" 2>/dev/null || die "process $4 exited; see $1"
    (( SECONDS < deadline )) || die "no '$2' in $1 after $3 s"
    sleep 0.1
  done
}

# profile_report PERF_DATA DIR: CPU share by process and by thread, the top
# symbols, and a flamegraph each of consumer, producer and PostgreSQL.
profile_report() {
  local data="$1" dir="$2" name pid
  {
    echo "== samples by process (whole machine, cold run; cpu-clock at 199 Hz per CPU) =="
    perf report -i "$data" --no-children -g none --sort comm --stdio 2>/dev/null | grep '%' | head -n 25
    echo "== consumer: by thread =="
    perf report -i "$data" --pid "$CONSUMER_PID" --no-children -g none --sort comm --stdio 2>/dev/null | grep '%' | head -n 15
    echo "== consumer: top symbols =="
    perf report -i "$data" --pid "$CONSUMER_PID" --no-children -g none --sort dso,symbol --stdio 2>/dev/null | grep '%' | head -n 40
    echo "== PostgreSQL: top symbols =="
    perf report -i "$data" --comms postgres --no-children -g none --sort dso,symbol --stdio 2>/dev/null | grep '%' | head -n 40
  } >"$dir/summary.txt" || true
  command -v inferno-flamegraph >/dev/null || { say "inferno-flamegraph not found (cargo install inferno): no SVGs"; return 0; }
  for name in consumer producer; do
    [[ "$name" == consumer ]] && pid="$CONSUMER_PID" || pid="$PRODUCER_PID"
    perf script -i "$data" --pid "$pid" 2>/dev/null | inferno-collapse-perf 2>/dev/null >"$dir/$name.folded" || true
    inferno-flamegraph --title "orderstream-$name, cold run" <"$dir/$name.folded" >"$dir/$name.svg" 2>/dev/null || true
  done
  perf script -i "$data" --comms postgres 2>/dev/null | inferno-collapse-perf 2>/dev/null >"$dir/postgres.folded" || true
  inferno-flamegraph --title "PostgreSQL backends, cold run" <"$dir/postgres.folded" >"$dir/postgres.svg" 2>/dev/null || true
}

# start_pipeline PHASE: a fresh inbox, state, topics, group and database for PHASE;
# sets PRODUCER_PID, CONSUMER_PIDS, PRODUCER_PORT, CONSUMER_PORTS, INBOX, DB, GROUP,
# TOPIC (CONSUMER_PID is the first consumer, the one profiled).
start_pipeline() {
  local phase="$1" n log
  DB="bench_$phase" GROUP="bench-$RUN_ID-$phase" TOPIC="bench.$RUN_ID.$phase"
  INBOX="$WORK/$phase/inbox"
  mkdir -p "$INBOX" "$WORK/$phase/state"
  new_db "$DB"
  export ORDERSTREAM_INBOX="$INBOX" ORDERSTREAM_STATE_DIR="$WORK/$phase/state" KAFKA_BROKERS="$BROKERS"
  export ORDERSTREAM_TOPIC="$TOPIC" ORDERSTREAM_DLQ_TOPIC="$TOPIC.dlq" ORDERSTREAM_GROUP="$GROUP"
  DATABASE_URL="$(db_url "$DB")"
  export DATABASE_URL ORDERSTREAM_PARTITIONS=6
  export ORDERSTREAM_PRODUCER_METRICS_ADDR=127.0.0.1:0 ORDERSTREAM_CONSUMER_METRICS_ADDR=127.0.0.1:0
  "$BIN/orderstream-producer" >"$WORK/$phase/producer.log" 2>&1 </dev/null &
  PRODUCER_PID=$!
  STARTED_PIDS+=("$PRODUCER_PID")
  wait_log "$WORK/$phase/producer.log" "Producer started" 60 "$PRODUCER_PID"
  CONSUMER_PIDS=() CONSUMER_PORTS=()
  for n in $(seq "$CONSUMERS"); do
    log="$WORK/$phase/consumer-$n.log"
    "$BIN/orderstream-consumer" >"$log" 2>&1 </dev/null &
    CONSUMER_PIDS+=("$!")
    STARTED_PIDS+=("$!")
    wait_log "$log" "Consumer started" 60 "$!"
  done
  CONSUMER_PID="${CONSUMER_PIDS[0]}"
  # Started is not yet consuming: wait until the group has handed out every
  # partition, each to one member, and every member has some.
  local deadline=$((SECONDS + 90))
  until python3 bench/assignment.py 6 "$WORK/$phase"/consumer-*.log; do
    (( SECONDS < deadline )) || die "the $phase group did not settle on 6 partitions in 90 s; see $WORK/$phase/"
    sleep 0.2
  done
  PRODUCER_PORT="$(metrics_port "$WORK/$phase/producer.log")"
  for n in $(seq "$CONSUMERS"); do CONSUMER_PORTS+=("$(metrics_port "$WORK/$phase/consumer-$n.log")"); done
  [[ -n "$PRODUCER_PORT" && "${#CONSUMER_PORTS[@]}" == "$CONSUMERS" && -n "${CONSUMER_PORTS[-1]}" ]] ||
    die "metrics ports not found in the $phase logs"
}
stop_pipeline() {
  local pid
  stop_pid "$PRODUCER_PID"
  for pid in "${CONSUMER_PIDS[@]}"; do stop_pid "$pid"; done
}
# The consumer group as one: CPU ticks summed, peak memory of the largest
# member, metrics summed, alive only if every member is.
consumers_ticks() { local pid total=0; for pid in "${CONSUMER_PIDS[@]}"; do total=$((total + $(cpu_ticks "$pid"))); done; echo "$total"; }
consumers_hwm() { local pid peak=0 kib; for pid in "${CONSUMER_PIDS[@]}"; do kib=$(vmhwm_kib "$pid"); (( kib > peak )) && peak=$kib; done; echo "$peak"; }
consumers_metric() { local port; for port in "${CONSUMER_PORTS[@]}"; do metric "$port" "$1"; done | awk '{ v += $1 } END { print v + 0 }'; }
consumers_alive() { local pid; for pid in "${CONSUMER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done; }

# --- 1. PostgreSQL: COPY ----------------------------------------------------------
say "phase copy: \\copy of $ORDERS rows into a table shaped like orders"
new_db bench_copy
# The schema exactly as the consumer creates it (its migration runner).
DATABASE_URL="$(db_url bench_copy)" "$BIN/orderstream-consumer" migrate >"$WORK/migrate.log" 2>&1 ||
  die "migrations failed; see $WORK/migrate.log"
sql bench_copy -c "CREATE TABLE copy_orders (LIKE orders INCLUDING ALL);
  ALTER TABLE copy_orders ALTER source_file SET DEFAULT 'copy', ALTER source_line SET DEFAULT 0,
    ALTER source_offset SET DEFAULT 0, ALTER read_at SET DEFAULT clock_timestamp();" >/dev/null
t0="$(now)"
sql bench_copy -c "\\copy copy_orders (id, user_id, completed_at, item_total, shipment_total) FROM '$FILE' WITH (FORMAT csv, HEADER true)" >/dev/null
COPY_S="$(calc "$(now) - $t0")"
[[ "$(sql bench_copy -c 'SELECT count(*) FROM copy_orders')" == "$ORDERS" ]] || die "COPY did not load $ORDERS rows"
sql orderstream -c "DROP DATABASE bench_copy" >/dev/null

# --- 2. Kafka: ProducerPerformance ------------------------------------------------
say "phase kafka: ProducerPerformance, $ORDERS records of $RECORD_SIZE bytes"
bash scripts/kafka.sh create-topic "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CPORT" "bench.$RUN_ID.perf" 6 >&2
kafka_tool org.apache.kafka.tools.ProducerPerformance --topic "bench.$RUN_ID.perf" \
  --num-records "$ORDERS" --record-size "$RECORD_SIZE" --throughput -1 \
  --producer-props "bootstrap.servers=$BROKERS" acks=all linger.ms=5 compression.type=lz4 enable.idempotence=true \
  >"$WORK/kafka-perf.log" 2>&1 || die "ProducerPerformance failed; see $WORK/kafka-perf.log"
KAFKA_RPS="$(grep -a 'records sent' "$WORK/kafka-perf.log" | tail -n1 | sed -n 's/.* records sent, \([0-9.]*\) records\/sec.*/\1/p')"
[[ -n "$KAFKA_RPS" ]] || die "no summary in $WORK/kafka-perf.log"
KAFKA_S="$(calc "$ORDERS / $KAFKA_RPS")"

# --- 3. orderstream end to end: cold, then re-ingest -----------------------------
say "phase e2e: cold load of $ORDERS orders, then re-ingest of the same file"
cp "$FILE" "$WORK/cold.csv.tmp"
cp "$FILE" "$WORK/again.csv.tmp"
start_pipeline e2e
P0="$(cpu_ticks "$PRODUCER_PID")" C0="$(consumers_ticks)" K0="$(cpu_ticks "$(kafka_pid)")" G0="$(pg_ticks)"
PERF_PID=""
if [[ "${BENCH_PROFILE:-0}" == 1 ]]; then
  # Every process on the machine (the broker and PostgreSQL too), software clock
  # (no PMU in this VM), DWARF call graphs (release builds keep line tables,
  # Debian's PostgreSQL has no frame pointers).
  rm -rf "$ROOT/profile" && mkdir -p "$ROOT/profile"
  perf record -a -e cpu-clock -F 199 --call-graph dwarf,16384 -o "$WORK/profile.data" >"$WORK/perf.log" 2>&1 &
  PERF_PID=$!
  STARTED_PIDS+=("$PERF_PID")
  sleep 1
elif [[ "${BENCH_PERF:-0}" == 1 ]]; then
  # Sampling profile of producer and consumer (software clock: no PMU in this VM).
  perf record -e cpu-clock -F 499 -g -p "$PRODUCER_PID,$(IFS=,; echo "${CONSUMER_PIDS[*]}")" -o "$WORK/perf.data" >"$WORK/perf.log" 2>&1 &
  PERF_PID=$!
  STARTED_PIDS+=("$PERF_PID")
  sleep 1
fi
t0="$(now)"
mv "$WORK/cold.csv.tmp" "$INBOX/cold.csv"
applied() { sql "$DB" -c "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$GROUP' AND topic = '$TOPIC'"; }
published_at="" deadline=$((SECONDS + 1800))
while :; do
  if [[ -z "$published_at" ]] && (( $(metric "$PRODUCER_PORT" orderstream_producer_records_published_total) >= ORDERS )); then
    published_at="$(now)"
    P1="$(cpu_ticks "$PRODUCER_PID")"
  fi
  # Applied records, from the group's stored offsets (six rows; the topic is
  # new, so offsets count records): a `count(*)` of the growing table every
  # 200 ms cost PostgreSQL a scan of up to 1,000,000 rows, CPU the pipeline
  # needs on two cores.
  (( $(applied) >= ORDERS )) && break
  kill -0 "$PRODUCER_PID" && consumers_alive || die "a pipeline process exited; see $WORK/e2e/"
  (( $(metric_sum "$PRODUCER_PORT" orderstream_producer_dead_letters_total) == 0 )) || die "the producer dead-lettered lines; see $WORK/e2e/"
  (( SECONDS < deadline )) || die "cold load not done after 1800 s"
  sleep 0.2
done
if [[ -n "$PERF_PID" && "${BENCH_PROFILE:-0}" == 1 ]]; then
  kill -INT "$PERF_PID"; wait "$PERF_PID" || true
  profile_report "$WORK/profile.data" "$ROOT/profile"
  say "profile of the cold run: $ROOT/profile/ (summary.txt, *.svg)"
elif [[ -n "$PERF_PID" ]]; then
  kill -INT "$PERF_PID"; wait "$PERF_PID" || true
  {
    echo "== samples by thread (producer + consumer, cold run) =="
    perf report -i "$WORK/perf.data" --no-children -g none --sort pid,comm --stdio 2>/dev/null | grep '%' | head -n 20
    echo "== top symbols =="
    perf report -i "$WORK/perf.data" --no-children -g none --sort comm,dso,symbol --stdio 2>/dev/null | grep '%' | head -n 40
  } >"$ROOT/perf-top.txt" || true
  say "perf profile of the cold run: $ROOT/perf-top.txt"
fi
P2="$(cpu_ticks "$PRODUCER_PID")" C1="$(consumers_ticks)" K1="$(cpu_ticks "$(kafka_pid)")" G1="$(pg_ticks)"
: "${published_at:=$(now)}" "${P1:=$P2}"
t_end="$(sql "$DB" -c 'SELECT extract(epoch FROM max(written_at)) FROM orders')"
COLD_S="$(calc "$t_end - $t0")"
PUBLISH_S="$(calc "$published_at - $t0")"
[[ "$(sql "$DB" -c 'SELECT count(*) FROM dead_letters')" == 0 ]] || die "dead letters in the cold run"
COLD_PRODUCER_HWM="$(vmhwm_kib "$PRODUCER_PID")" COLD_CONSUMER_HWM="$(consumers_hwm)"
# The consumer's own view of the cold run: how many batches, how big, how long
# each transaction (begin to commit) took.
BATCHES="$(consumers_metric orderstream_consumer_batch_records_count)"
BATCH_ROWS="$(consumers_metric orderstream_consumer_batch_records_sum)"
TX_SECONDS="$(consumers_metric orderstream_consumer_batch_commit_seconds_sum)"

[[ "$(applied)" == "$ORDERS" ]] || die "consumer_offsets sum $(applied) != $ORDERS after the cold run"
[[ "$(sql "$DB" -c 'SELECT count(*) FROM orders')" == "$ORDERS" ]] || die "not $ORDERS rows after the cold run"
t0="$(now)"
mv "$WORK/again.csv.tmp" "$INBOX/again.csv"
deadline=$((SECONDS + 1800))
until (( $(applied) >= 2 * ORDERS )); do
  kill -0 "$PRODUCER_PID" && consumers_alive || die "a pipeline process exited; see $WORK/e2e/"
  (( SECONDS < deadline )) || die "re-ingest not done after 1800 s"
  sleep 0.2
done
t_end="$(sql "$DB" -c "SELECT extract(epoch FROM max(updated_at)) FROM consumer_offsets WHERE group_id = '$GROUP' AND topic = '$TOPIC'")"
AGAIN_S="$(calc "$t_end - $t0")"
# The metrics follow the database commit (after the next batch is gathered):
# give the last batch a moment to be counted.
for _ in $(seq 50); do
  UNCHANGED="$(consumers_metric 'orderstream_consumer_upserts_total{outcome="unchanged"}')"
  (( ${UNCHANGED%.*} >= ORDERS )) && break
  sleep 0.1
done
[[ "$(sql "$DB" -c 'SELECT count(*) FROM orders')" == "$ORDERS" ]] || die "re-ingest changed the row count"
(( ${UNCHANGED%.*} == ORDERS )) || say "warning: unchanged outcomes $UNCHANGED != $ORDERS"
# What the pipeline costs when there is nothing to do: CPU over 5 idle seconds.
PI0="$(cpu_ticks "$PRODUCER_PID")" CI0="$(consumers_ticks)"
sleep 5
IDLE_P="$(calc "($(cpu_ticks "$PRODUCER_PID") - $PI0) / $CLK_TCK / 5")"
IDLE_C="$(calc "($(consumers_ticks) - $CI0) / $CLK_TCK / 5")"
stop_pipeline
sql orderstream -c "DROP DATABASE $DB" >/dev/null

# --- 4. naive baseline --------------------------------------------------------------
say "phase naive: one upsert + one commit per record, $NAIVE_ROWS rows"
new_db bench_naive
NAIVE_LINE="$(target/release/examples/naive_upsert upsert "$(db_url bench_naive)" "$FILE" "$NAIVE_ROWS")"
NAIVE_RPS="$(sed -n 's/.* rows_per_s=\([0-9.]*\).*/\1/p' <<<"$NAIVE_LINE")"
NAIVE_MBPS="$(sed -n 's/.* mb_per_s=\([0-9.]*\).*/\1/p' <<<"$NAIVE_LINE")"
NAIVE_SAMPLE_S="$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$NAIVE_LINE")"
sql orderstream -c "DROP DATABASE bench_naive" >/dev/null

# --- 5. latency under a steady append ---------------------------------------------------
say "phase latency: $LAT_RATE lines/s for $LAT_SECONDS s"
start_pipeline latency
python3 bench/append.py "$INBOX/live.csv" "$WORK/latency/sent.csv" "$LAT_RATE" "$LAT_SECONDS" >&2
SENT="$(wc -l <"$WORK/latency/sent.csv")"
deadline=$((SECONDS + 120))
until (( $(sql "$DB" -c 'SELECT count(*) FROM orders') >= SENT )); do
  (( SECONDS < deadline )) || die "latency phase: not all $SENT lines arrived within 120 s"
  sleep 0.2
done
# Also split at read_at (when the producer read the line): file -> producer,
# and producer -> Kafka -> consumer -> commit.
read -r P50 P99 PMAX READ50 READ99 <<<"$(sql "$DB" -F ' ' \
  -c "CREATE TEMP TABLE sent (id bigint, at double precision)" \
  -c "\\copy sent FROM '$WORK/latency/sent.csv' WITH (FORMAT csv)" \
  -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
             round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
             round(max(ms)::numeric, 1),
             round(percentile_cont(0.5) WITHIN GROUP (ORDER BY read_ms)::numeric, 1),
             round(percentile_cont(0.99) WITHIN GROUP (ORDER BY read_ms)::numeric, 1)
      FROM (SELECT (extract(epoch FROM o.written_at) - s.at) * 1000 AS ms,
                   (extract(epoch FROM o.read_at) - s.at) * 1000 AS read_ms
            FROM sent s JOIN orders o USING (id)) l")"
LAT_PRODUCER_HWM="$(vmhwm_kib "$PRODUCER_PID")" LAT_CONSUMER_HWM="$(consumers_hwm)"
stop_pipeline
sql orderstream -c "DROP DATABASE $DB" >/dev/null

# --- report ------------------------------------------------------------------------------
E2E_RPS="$(calc "$ORDERS / $COLD_S")"
AGAIN_RPS="$(calc "$ORDERS / $AGAIN_S")"
COPY_RPS="$(calc "$ORDERS / $COPY_S")"
mb() { calc "$1 / $2 / 1e6"; }
f0() { printf '%.0f' "$1"; }
f2() { printf '%.2f' "$1"; }
ratio() { printf '%.3f' "$(calc "$E2E_RPS / $1")"; }
cpu_s() { calc "($2 - $1) / $CLK_TCK"; }
mib() { calc "round($1 / 1024, 1)"; }
verdict() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo met; else echo MISSED; fi; }

COPY_RATIO="$(ratio "$COPY_RPS")" NAIVE_RATIO="$(ratio "$NAIVE_RPS")" KAFKA_RATIO="$(ratio "$KAFKA_RPS")"
PROD_HWM="$(mib "$(( COLD_PRODUCER_HWM > LAT_PRODUCER_HWM ? COLD_PRODUCER_HWM : LAT_PRODUCER_HWM ))")"
CONS_HWM="$(mib "$(( COLD_CONSUMER_HWM > LAT_CONSUMER_HWM ? COLD_CONSUMER_HWM : LAT_CONSUMER_HWM ))")"
{
  echo
  echo "orderstream bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $ORDERS orders ($FILE_BYTES bytes CSV, mean Kafka value $VALUE_BYTES B), $(nproc) cores"
  printf '%-44s %10s %9s %11s %8s %10s\n' "measurement" "rows" "seconds" "rows/s" "MB/s" "e2e ÷ this"
  printf '%-44s %10s %9s %11s %8s %10s\n' "PostgreSQL \\copy (same table shape, PK)" "$ORDERS" "$(f2 "$COPY_S")" "$(f0 "$COPY_RPS")" "$(f2 "$(mb "$FILE_BYTES" "$COPY_S")")" "$COPY_RATIO"
  printf '%-44s %10s %9s %11s %8s %10s\n' "Kafka ProducerPerformance (${RECORD_SIZE} B)" "$ORDERS" "$(f2 "$KAFKA_S")" "$(f0 "$KAFKA_RPS")" "$(f2 "$(mb "$((ORDERS * RECORD_SIZE))" "$KAFKA_S")")" "$KAFKA_RATIO"
  printf '%-44s %10s %9s %11s %8s %10s\n' "orderstream e2e, cold ($CONSUMERS consumer(s))" "$ORDERS" "$(f2 "$COLD_S")" "$(f0 "$E2E_RPS")" "$(f2 "$(mb "$FILE_BYTES" "$COLD_S")")" "1.000"
  printf '%-44s %10s %9s %11s %8s %10s\n' "orderstream e2e, re-ingest (all unchanged)" "$ORDERS" "$(f2 "$AGAIN_S")" "$(f0 "$AGAIN_RPS")" "$(f2 "$(mb "$FILE_BYTES" "$AGAIN_S")")" "$(ratio "$AGAIN_RPS")"
  printf '%-44s %10s %9s %11s %8s %10s\n' "naive upsert+commit per row (sample)" "$NAIVE_ROWS" "$(f2 "$NAIVE_SAMPLE_S")" "$(f0 "$NAIVE_RPS")" "$(f2 "$NAIVE_MBPS")" "$NAIVE_RATIO"
  echo "  naive: $NAIVE_ROWS rows timed; at that rate $ORDERS rows would take $(f0 "$(calc "$ORDERS / $NAIVE_RPS")") s"
  echo "latency at $LAT_RATE lines/s for $LAT_SECONDS s ($SENT lines), line written -> row committed: p50 $P50 ms, p99 $P99 ms, max $PMAX ms"
  echo "  of which line written -> read by the producer (read_at): p50 $READ50 ms, p99 $READ99 ms"
  echo "peak RSS (VmHWM): producer $(mib "$COLD_PRODUCER_HWM") MiB after cold, $(mib "$LAT_PRODUCER_HWM") MiB after latency; largest of $CONSUMERS consumer(s) $(mib "$COLD_CONSUMER_HWM") MiB after cold, $(mib "$LAT_CONSUMER_HWM") MiB after latency"
  echo "cold run profile: producer published all records after $(f2 "$PUBLISH_S") s (CPU $(f2 "$(cpu_s "$P0" "$P1")") s), last row committed after $(f2 "$COLD_S") s;"
  echo "  CPU seconds over the cold run: producer $(f2 "$(cpu_s "$P0" "$P2")"), consumers $(f2 "$(cpu_s "$C0" "$C1")"), Kafka broker $(f2 "$(cpu_s "$K0" "$K1")"), PostgreSQL $(f2 "$(cpu_s "$G0" "$G1")") (of $(f2 "$(calc "$(nproc) * $COLD_S")") core-seconds available)"
  echo "  consumers: $(f0 "$BATCHES") batches, mean $(f0 "$(calc "$BATCH_ROWS / max($BATCHES, 1)")") records, mean transaction $(calc "round(1000 * $TX_SECONDS / max($BATCHES, 1), 1)") ms, transactions $(f2 "$TX_SECONDS") s of the $(f2 "$COLD_S") s run"
  echo "  idle (5 s after the re-ingest, nothing to do): producer $(f2 "$IDLE_P") cores, consumers $(f2 "$IDLE_C") cores"
  echo "targets: e2e >= 150000 rows/s: $(verdict "$E2E_RPS >= 150000"); e2e/COPY >= 0.25: $(verdict "$COPY_RATIO >= 0.25"); e2e/naive >= 20: $(verdict "$NAIVE_RATIO >= 20");"
  echo "  p99 < 200 ms: $(verdict "$P99 < 200"); p50 < 50 ms: $(verdict "$P50 < 50"); producer < 64 MiB: $(verdict "$PROD_HWM < 64"); consumer < 128 MiB: $(verdict "$CONS_HWM < 128")"
  echo "bench duration: $((SECONDS - BENCH_T0)) s"
  echo "bench: orders=$ORDERS consumers=$CONSUMERS e2e_rows_per_s=$(f0 "$E2E_RPS") reingest_rows_per_s=$(f0 "$AGAIN_RPS") copy_rows_per_s=$(f0 "$COPY_RPS") kafka_rows_per_s=$(f0 "$KAFKA_RPS") naive_rows_per_s=$(f0 "$NAIVE_RPS") copy_ratio=$COPY_RATIO kafka_ratio=$KAFKA_RATIO naive_ratio=$(printf '%.1f' "$NAIVE_RATIO") p50_ms=$P50 p99_ms=$P99 max_ms=$PMAX producer_hwm_mib=$PROD_HWM consumer_hwm_mib=$CONS_HWM"
} | tee "$ROOT/report.txt"
