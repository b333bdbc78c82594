#!/usr/bin/env bash
# `make bench-compare [REF=<git ref>]`: this working tree against REF
# (default: the last release in crates/bench/releases.tsv), alternately on the
# same services and input; prints new ÷ old (BENCHMARKS.md, "Comparing
# against a release").
#
# REF's producer and consumer are built once into a target folder of their
# own, outside the checkout (BENCH_COMPARE_CACHE, default
# ~/.cache/orderstream/bench-compare), and kept there by commit: a later
# comparison against the same release builds nothing. The bench itself and
# this tree's binaries are built by scripts/bench.sh, as for `make bench`. Settings:
# BENCH_ORDERS (default 100000 here), BENCH_ROUNDS (2), BENCH_MIN_RATIO
# (none: report only), BENCH_CONSUMERS, and the other BENCH_* of `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench-compare: $*" >&2; exit 2; }
say() { echo "bench-compare: $*" >&2; }

releases=crates/bench/releases.tsv
ref="${REF:-}"
if [[ -z "$ref" ]]; then
  ref="$(grep -v '^#' "$releases" | awk -F'\t' 'NF >= 2 { tag = $1 } END { print tag }')"
  [[ -n "$ref" ]] || die "no REF given and no release in $releases"
fi

# The commit: a ref git knows, else a tag listed in releases.tsv (a clone
# without tags), whose commit must be in this history.
commit="$(git rev-parse --verify --quiet "$ref^{commit}" || true)"
if [[ -z "$commit" ]]; then
  listed="$(grep -v '^#' "$releases" | awk -F'\t' -v tag="$ref" '$1 == tag { print $2 }')"
  [[ -n "$listed" ]] || die "unknown ref '$ref': not a git ref here and not a tag in $releases (git fetch --tags?)"
  commit="$(git rev-parse --verify --quiet "$listed^{commit}" || true)"
  [[ -n "$commit" ]] || die "$ref is commit $listed in $releases, which this clone does not have (a shallow clone? git fetch --unshallow)"
fi
short="${commit:0:7}"

cache="${BENCH_COMPARE_CACHE:-$HOME/.cache/orderstream/bench-compare}"
bins="$cache/bin-$commit"
if [[ -x "$bins/orderstream-producer" && -x "$bins/orderstream-consumer" ]]; then
  say "$ref ($short): binaries from $bins"
else
  src="$cache/src-$commit" target="$cache/target-$commit"
  say "$ref ($short): building its producer and consumer (release) in $src"
  rm -rf "$src" && mkdir -p "$src"
  git archive "$commit" | tar -x -C "$src"
  (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet \
     -p orderstream-producer -p orderstream-consumer --bins)
  mkdir -p "$bins.tmp"
  cp "$target/release/orderstream-producer" "$target/release/orderstream-consumer" "$bins.tmp/"
  echo "$commit" > "$bins.tmp/commit"
  rm -rf "$bins" && mv "$bins.tmp" "$bins"
  # Only the two binaries are kept: the build folder holds gigabytes.
  rm -rf "$src" "$target"
fi

# This tree: built and run as `make bench` does, in comparison mode.
export BENCH_ORDERS="${BENCH_ORDERS:-100000}"
exec bash scripts/bench.sh --compare-with "$bins" --compare-label "$ref" "$@"
