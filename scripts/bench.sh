#!/usr/bin/env bash
# `make bench`: builds the pipeline's binaries and the bench (release), then
# runs orderstream-bench, which does everything else: its own PostgreSQL and
# Kafka (ports in ports.env), every phase, the report. Settings are BENCH_*
# variables (see BENCHMARKS.md) or the bench's flags: `make bench BENCH_ARGS=--help`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only what the bench runs: a half-finished crate elsewhere in the workspace
# must not stop it.
echo "bench: building (release)" >&2
cargo build --release --quiet -p orderstream-producer -p orderstream-consumer -p orderstream-generator \
  -p orderstream-verify -p orderstream-bench --bins
cargo build --release --quiet -p orderstream-consumer --example naive_upsert
exec "${CARGO_TARGET_DIR:-target}/release/orderstream-bench" "$@"
