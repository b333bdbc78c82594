#!/usr/bin/env bash
# The Rust toolchain check of `make run` (scripts/lib/toolchain.sh), without
# building anything: a PATH without cargo, an old rustc and a current one,
# each a fake on its own PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-toolchain: FAILED: $*" >&2; exit 1; }
fakes="$(mktemp -d)"
trap 'rm -rf "$fakes"' EXIT

# check PATH: runs the check on that PATH alone; prints its error, returns its status.
check() {
  env -i PATH="$1" HOME="$fakes" /bin/bash -c \
    'die() { echo "$*" >&2; exit 1; }; . scripts/lib/toolchain.sh; need_rust_toolchain' 2>&1
}

# fake_toolchain DIR VERSION: cargo and rustc in DIR, rustc saying VERSION.
fake_toolchain() {
  mkdir -p "$1"
  printf '#!/bin/sh\necho "cargo %s"\n' "$2" >"$1/cargo"
  printf '#!/bin/sh\necho "rustc %s (0000000 2025-01-01)"\n' "$2" >"$1/rustc"
  chmod +x "$1/cargo" "$1/rustc"
}

wanted="$(. scripts/lib/toolchain.sh && workspace_rust_version)"
[[ "$wanted" =~ ^[0-9]+\.[0-9]+ ]] || fail "no rust-version read from Cargo.toml: '$wanted'"

# The tools the check itself uses, and nothing else: no cargo, no rustc.
mkdir -p "$fakes/base"
for tool in sed awk head dirname; do ln -s "$(command -v "$tool")" "$fakes/base/$tool"; done

out="$(check "$fakes/base")" && fail "a PATH without cargo was accepted"
[[ "$out" == *"cargo not found"*"rustup"* ]] || fail "no cargo: '$out'"

fake_toolchain "$fakes/old" 1.70.0
out="$(check "$fakes/old:$fakes/base")" && fail "rustc 1.70.0 was accepted"
[[ "$out" == *"rustc 1.70.0 is older than $wanted"*"rustup"* ]] || fail "an old rustc: '$out'"

fake_toolchain "$fakes/current" "$wanted.0"
out="$(check "$fakes/current:$fakes/base")" || fail "rustc $wanted.0 was refused: '$out'"

fake_toolchain "$fakes/newer" 1.200.0-nightly
out="$(check "$fakes/newer:$fakes/base")" || fail "rustc 1.200.0-nightly was refused: '$out'"

echo "test-toolchain: no cargo and an old rustc refused with the rustup command; $wanted and newer accepted"
