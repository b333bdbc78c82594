#!/usr/bin/env bash
# Test services, shared by `make test`, `make test-services` and `make chaos`:
# a PostgreSQL cluster and a Kafka broker under one folder, on given ports.
# Source it, then:
#
#   start_test_services LOCAL PG_PORT KAFKA_PORT CONTROLLER_PORT
#       installs what is missing, starts both, exports ORDERSTREAM_TEST_*
#       and writes them to LOCAL/env (`. LOCAL/env` to run single tests).
#       A service that is not running starts from empty storage: every test
#       makes its own databases and topics, and a broker carrying thousands
#       of old test topics takes minutes to start. Fails (status 1) when
#       either service does not start.
#   stop_test_services LOCAL PG_PORT KAFKA_PORT CONTROLLER_PORT

start_test_services() {
  local local_dir="$1" pg_port="$2" kafka_port="$3" controller_port="$4"
  bash scripts/deps.sh || return 1
  if ! bash scripts/postgres.sh status "$local_dir/pg" "$pg_port" >/dev/null; then
    rm -rf "$local_dir/pg/data"
  fi
  if ! bash scripts/kafka.sh status "$local_dir/kafka" "$kafka_port" "$controller_port" >/dev/null; then
    rm -rf "$local_dir/kafka/data" "$local_dir/kafka/cluster.id"
  fi
  bash scripts/postgres.sh start "$local_dir/pg" "$pg_port" || return 1
  bash scripts/kafka.sh start "$local_dir/kafka" "$kafka_port" "$controller_port" || return 1
  ORDERSTREAM_TEST_DATABASE_URL="$(bash scripts/postgres.sh url "$local_dir/pg" "$pg_port")"
  ORDERSTREAM_TEST_KAFKA_BROKERS="127.0.0.1:$kafka_port"
  export ORDERSTREAM_TEST_DATABASE_URL ORDERSTREAM_TEST_KAFKA_BROKERS
  cat > "$local_dir/env" <<ENV
# Source this to run single tests by hand against these services.
export ORDERSTREAM_TEST_DATABASE_URL='$ORDERSTREAM_TEST_DATABASE_URL'
export ORDERSTREAM_TEST_KAFKA_BROKERS='$ORDERSTREAM_TEST_KAFKA_BROKERS'
ENV
}

stop_test_services() {
  local local_dir="$1" pg_port="$2" kafka_port="$3" controller_port="$4"
  bash scripts/kafka.sh stop "$local_dir/kafka" "$kafka_port" "$controller_port" || true
  bash scripts/postgres.sh stop "$local_dir/pg" "$pg_port" || true
}
