#!/usr/bin/env bash
# `make test`: every test, from a fresh machine.
#
# Starts its own PostgreSQL and Kafka (ports and folders apart from `make
# run`'s, so both can run side by side), runs the unit and end-to-end tests,
# then a smoke test of `make run` itself, stops what it started, and ends
# with the speed gate against the last release (`make bench-compare`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The ports' defaults are in ports.env.
. ./ports.env
TEST_LOCAL="${TEST_LOCAL:-.local/test}"
TEST_PG_PORT="${TEST_PG_PORT:-$PORT_TEST_PG}"
TEST_KAFKA_PORT="${TEST_KAFKA_PORT:-$PORT_TEST_KAFKA}"
TEST_KAFKA_CONTROLLER_PORT="${TEST_KAFKA_CONTROLLER_PORT:-$PORT_TEST_KAFKA_CONTROLLER}"

. scripts/test-services.sh
SERVICES=("$TEST_LOCAL" "$TEST_PG_PORT" "$TEST_KAFKA_PORT" "$TEST_KAFKA_CONTROLLER_PORT")
trap 'stop_test_services "${SERVICES[@]}"' EXIT
start_test_services "${SERVICES[@]}"

# The Docker deployment, the Prometheus config, the alert rules and their
# unit tests (promtool is installed with the test services).
bash scripts/compose-check.sh
# `make run`'s Rust toolchain check, on fake toolchains (no build).
bash scripts/test-toolchain.sh
# `make down` signals only the processes `make run` started (scripts/lib/process.sh).
bash scripts/test-process.sh
# The end-to-end tests start the real binaries: build them first. Test builds
# carry the chaos suite's crash points (inert unless FAILPOINTS is set). The
# end-to-end tests are built only with orderstream-e2e's integration-tests
# feature (a plain `cargo test` runs the unit tests without services).
FAILPOINT_FEATURES="orderstream-producer/failpoints,orderstream-consumer/failpoints"
cargo build --workspace --bins --features "$FAILPOINT_FEATURES"
# Every command the docs print: its make target and variables exist, its
# subcommands, flags and literal values parse (scripts/test-make-run.sh then
# runs the README's dead-letters examples against `make run`).
python3 scripts/doc-commands.py check target/debug
cargo test --workspace --no-fail-fast --features "$FAILPOINT_FEATURES,orderstream-e2e/integration-tests"

# The reliability suite's fast subset (`make chaos` runs every scenario).
bash scripts/chaos.sh run --fast --only "${CHAOS_FAST_SUBSET:-2,8,9,10,12a,12c,13,15,16,18,20,21,22}"

# Each fuzz target briefly (`make fuzz` runs them longer).
# The targets that build on the schema crate alone; `headers` links the
# consumer and librdkafka (minutes of nightly build): `make fuzz` runs it.
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" FUZZ_TARGETS="${FUZZ_TARGETS:-line decode}" bash scripts/fuzz.sh

bash scripts/test-make-run.sh

# The speed gate: this tree against the last release (crates/bench/releases.tsv),
# alternately on the bench's own services, two rounds each, medians; fails
# when the end-to-end or the sink rate falls below 0.75 of the release's
# (BENCHMARKS.md, "The regression gate"). The test services go first: the
# gate measures, so nothing else may run beside it.
stop_test_services "${SERVICES[@]}"
BENCH_ORDERS="${GATE_ORDERS:-100000}" BENCH_ROUNDS="${GATE_ROUNDS:-2}" BENCH_MIN_RATIO="${GATE_MIN_RATIO:-0.75}" \
  bash scripts/bench-compare.sh
