#!/usr/bin/env bash
# Smoke test of `make run` as a user runs it: refuse a missing inbox and an
# unconfirmed `make clean`, load an inbox, check the table,
# ask `make status` and `make dead-letters`, run it again (no duplicates, no
# second producer), kill the consumer and run it again (it comes back, still
# no duplicates), then `make down`. It reads pid files, exit codes and JSON,
# never the scripts' printed text (but for the refusals: they must name the path).
#
# Uses its own folder and ports, so it never touches a developer's `make run`.
# Uses debug binaries (PROFILE=debug): the release build is the same code and
# would double the test's build time.
set -euo pipefail
cd "$(dirname "$0")/.."

. ./ports.env
export LOCAL=.local/test/make-run PROFILE=debug \
  PG_PORT=$PORT_TEST_MAKE_RUN_PG KAFKA_PORT=$PORT_TEST_MAKE_RUN_KAFKA \
  KAFKA_CONTROLLER_PORT=$PORT_TEST_MAKE_RUN_KAFKA_CONTROLLER PROMETHEUS_PORT=$PORT_TEST_MAKE_RUN_PROMETHEUS \
  ALERTMANAGER_PORT=$PORT_TEST_MAKE_RUN_ALERTMANAGER \
  PRODUCER_METRICS_PORT=$PORT_TEST_MAKE_RUN_PRODUCER_METRICS CONSUMER_METRICS_PORT=$PORT_TEST_MAKE_RUN_CONSUMER_METRICS \
  LAG_EXPORTER_METRICS_PORT=$PORT_TEST_MAKE_RUN_LAG_EXPORTER_METRICS VERIFY_METRICS_PORT=$PORT_TEST_MAKE_RUN_VERIFY_METRICS
INBOX="$(mktemp -d)"
export INBOX
# On failure, the processes' logs are shown before the folder goes away.
cleanup() {
  local status=$?
  if (( status != 0 )); then
    for log in "$LOCAL"/log/*.log; do
      [[ -f "$log" ]] && { echo "--- last lines of $log"; tail -n 20 "$log"; }
    done
  fi
  make --no-print-directory down >/dev/null
  rm -rf "$INBOX" "$LOCAL"
}
trap cleanup EXIT
fail() { echo "test-make-run: FAILED: $*" >&2; exit 1; }

# Two refusals first, while nothing runs; each check is listed when it fails.
refusals=()
# A mistyped inbox is an error naming it, before anything starts: no folder
# made, no sample orders generated, no PostgreSQL started, nothing loaded.
missing="$INBOX/no-such-inbox"
started=$SECONDS
if ! out="$(INBOX="$missing" timeout 60 make --no-print-directory run 2>&1 </dev/null)"; then
  (( SECONDS - started <= 10 )) || refusals+=("make run INBOX=<missing> took $((SECONDS - started)) s to fail (10 s at most)")
  grep -qF -- "$missing" <<<"$out" || refusals+=("make run INBOX=<missing> failed without naming the path: $out")
else
  refusals+=("make run INBOX=<missing> exited 0")
fi
[[ ! -e "$missing" ]] || refusals+=("make run INBOX=<missing> created $missing")
[[ ! -e "$LOCAL" ]] || refusals+=("make run INBOX=<missing> started something ($LOCAL exists)")
make --no-print-directory down >/dev/null
# `make clean` without YES=1 and without a terminal deletes nothing.
clean_local="$LOCAL-clean-check"
mkdir -p "$clean_local/pg" && touch "$clean_local/pg/kept"
if LOCAL="$clean_local" make --no-print-directory clean </dev/null >/dev/null 2>&1; then
  refusals+=("make clean without YES=1 and without a terminal exited 0")
fi
[[ -f "$clean_local/pg/kept" ]] || refusals+=("make clean without YES=1 and without a terminal deleted $clean_local")
rm -rf "$clean_local"
(( ${#refusals[@]} == 0 )) || { printf 'test-make-run: FAILED: %s\n' "${refusals[@]}" >&2; exit 1; }

SEED=../shared/data/seed-orders
if compgen -G "$SEED/*.csv" >/dev/null; then
  cp "$SEED"/*.csv "$INBOX/"
  expected=3024
else
  echo "test-make-run: $SEED is absent; using 2000 generated orders instead of the seed exports"
  # Under the seed's name: the README's examples name it.
  cargo run --quiet --bin orderstream-gen -- --orders 2000 --output "$INBOX/2022_08.csv"
  expected=2000
fi

count() { psql "$(bash scripts/postgres.sh url "$LOCAL/pg" "$PG_PORT")" -Atc 'SELECT count(*) FROM orders'; }

make --no-print-directory run
curl -fsS "http://127.0.0.1:29190/-/ready" >/dev/null || fail "make run started no Prometheus"
for port in "$PRODUCER_METRICS_PORT" "$CONSUMER_METRICS_PORT" "$LAG_EXPORTER_METRICS_PORT" "$VERIFY_METRICS_PORT"; do
  metrics="$(curl -fsS "http://127.0.0.1:$port/metrics")" || fail "nothing serves metrics on :$port"
  grep -q '^orderstream_' <<<"$metrics" || fail ":$port serves no orderstream metric"
done
[[ "$(count)" == "$expected" ]] || fail "expected $expected orders after make run, found $(count)"
[[ -f "$LOCAL/env" ]] || fail "make run wrote no $LOCAL/env"
( . "$LOCAL/env" && [[ -n "$ORDERSTREAM_DATABASE_URL" && -n "$ORDERSTREAM_KAFKA_BROKERS" ]] ) || fail "$LOCAL/env lacks ORDERSTREAM_DATABASE_URL or ORDERSTREAM_KAFKA_BROKERS"

# Caught up: `make status` says so by its exit code, and its JSON names every inbox file.
make --no-print-directory status >/dev/null || fail "make status exited $? after make run caught up (0 expected)"
status_json="$(make --no-print-directory status STATUS_ARGS=--json)" || fail "make status --json exited $?"
inbox_files="$(find "$INBOX" -maxdepth 1 -name '*.csv' | wc -l)"
python3 -c 'import json, sys; files = json.load(sys.stdin)["files"]; sys.exit(0 if len(files) == int(sys.argv[1]) else 1)' \
  "$inbox_files" <<<"$status_json" || fail "make status --json does not list the inbox's $inbox_files file(s)"
make --no-print-directory dead-letters >/dev/null || fail "make dead-letters exited $?"

# The README's dead-letters commands, exactly as printed (scripts/doc-commands.py
# reads them from it), on one bad line appended to 2022_08.csv: listed by its
# reason, resolved by the file's name alone, exported.
sql() { psql "$(bash scripts/postgres.sh url "$LOCAL/pg" "$PG_PORT")" -Atc "$1"; }
echo "999999,1,2022-08-31 23:00:00,12€,1.00" >>"$INBOX/2022_08.csv"
for _ in $(seq 60); do
  [[ "$(sql "SELECT count(*) FROM dead_letters WHERE reason = 'invalid_amount'")" == 1 ]] && break
  sleep 0.5
done
[[ "$(sql "SELECT count(*) FROM dead_letters WHERE reason = 'invalid_amount'")" == 1 ]] \
  || fail "the appended bad line is not in dead_letters within 30 s"
readme_examples=0
while IFS= read -r args; do
  readme_examples=$((readme_examples + 1))
  out="$(make --no-print-directory dead-letters DL_ARGS="$args" 2>&1)" \
    || fail "make dead-letters DL_ARGS=\"$args\" (README) exited non-zero: $out"
  case "$args" in
    list\ *) grep -q "2022_08.csv" <<<"$out" || fail "DL_ARGS=\"$args\" did not list the bad line: $out" ;;
    resolve\ *) [[ "$(sql "SELECT count(*) FROM dead_letters WHERE resolved_at IS NOT NULL")" == 1 ]] \
      || fail "DL_ARGS=\"$args\" did not resolve the bad line of 2022_08.csv" ;;
    export\ --output\ *) exported="${args#export --output }"
      [[ "$(wc -l <"$exported")" == 2 ]] || fail "DL_ARGS=\"$args\" did not write the header and the bad line"
      rm -f "$exported" ;;
  esac
done < <(python3 scripts/doc-commands.py examples DL_ARGS)
(( readme_examples >= 3 )) || fail "expected the README's list, resolve and export examples, found $readme_examples"
# Every line of every export is accounted for: stored, or dead-lettered (the bad line).
make --no-print-directory verify >/dev/null || fail "make verify exited $? after the load (0: nothing missing)"
# The README's restore path: rows deleted by hand are missing for make verify,
# make replay FILE= brings exactly them back, and make verify finds none missing.
sql "DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE source_file LIKE '%/2022_08.csv' ORDER BY id LIMIT 3)" >/dev/null
if make --no-print-directory verify >/dev/null; then fail "make verify exited 0 with three rows deleted"; fi
make --no-print-directory replay FILE="$INBOX/2022_08.csv" >/dev/null || fail "make replay FILE=… (README) exited $?"
restored=false
for _ in $(seq 60); do
  make --no-print-directory verify >/dev/null && { restored=true; break; }
  sleep 0.5
done
$restored || fail "make verify still finds lines missing 30 s after make replay FILE=…"
make --no-print-directory redrive >/dev/null || fail "make redrive (README) exited $?"

alive() { kill -0 "$1" 2>/dev/null; }
producer_pid="$(cat "$LOCAL/run/producer.pid")"
make --no-print-directory run >/dev/null
[[ "$(cat "$LOCAL/run/producer.pid")" == "$producer_pid" ]] && alive "$producer_pid" \
  || fail "a second make run replaced the running producer"
[[ "$(count)" == "$expected" ]] || fail "a second make run changed the row count to $(count)"

consumer_pid="$(cat "$LOCAL/run/consumer.pid")"
kill -9 "$consumer_pid"
make --no-print-directory run >/dev/null
restarted="$(cat "$LOCAL/run/consumer.pid")"
[[ "$restarted" != "$consumer_pid" ]] && alive "$restarted" || fail "make run did not bring the killed consumer back"
[[ "$(count)" == "$expected" ]] || fail "after the consumer was killed and restarted: $(count) orders"

echo "test-make-run: a missing inbox and an unconfirmed make clean were refused; $expected orders; Prometheus and every /metrics answered; make status said caught up; the README's $readme_examples dead-letters commands did what it says; make verify found nothing missing, then the three rows deleted, which make replay FILE= restored; make redrive ran; a second run and a consumer restart added no duplicates"
echo "test-make-run: 1 passed, 0 failed"
