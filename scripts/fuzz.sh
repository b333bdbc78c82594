#!/usr/bin/env bash
# `make fuzz`: runs every cargo fuzz target (or FUZZ_TARGETS) for
# FUZZ_SECONDS each (default 300; `make test` runs `line` and `decode` for
# 20 s: `headers` links the consumer, librdkafka included, a build of
# several minutes with nightly, so it runs under `make fuzz`). Seeds are in fuzz/seeds/<target>; the
# growing corpus and any crash artifacts stay in the git-ignored fuzz/corpus
# and fuzz/artifacts. A crash fails the run and prints its reproducer.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-300}"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: cargo fuzz needs the nightly Rust toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked --quiet
fi
# The targets that link the consumer crate (and librdkafka).
CONSUMER_TARGETS="headers"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# FUZZ_TARGETS: a space-separated subset (default: every target).
for target in ${FUZZ_TARGETS:-$(cd fuzz && cargo +nightly fuzz list)}; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for ${seconds} s"
  status=0
  features=()
  # Targets on the consumer crate need its feature (fuzz/Cargo.toml).
  [[ " $CONSUMER_TARGETS " == *" $target "* ]] && features=(--features consumer-targets)
  (cd fuzz && cargo +nightly fuzz run "${features[@]}" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1) >"$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $target failed (exit $status); a crash input is in fuzz/artifacts/$target;" \
         "reproduce with: (cd fuzz && cargo +nightly fuzz run $target artifacts/$target/<file>)" >&2
    exit 1
  fi
done
