# The Rust toolchain `make run` builds with: cargo and rustc on the PATH, at
# least the workspace's `rust-version` (Cargo.toml). Source it after defining
# die(); call need_rust_toolchain before anything starts, so a missing or old
# toolchain stops the run with how to get one, not halfway with a compiler
# error.

# workspace_rust_version: the `rust-version` of the workspace's Cargo.toml.
workspace_rust_version() {
  local manifest="${TOOLCHAIN_MANIFEST:-$(dirname "${BASH_SOURCE[0]}")/../../Cargo.toml}"
  sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$manifest" | head -n 1
}

# version_at_least HAVE WANT: HAVE (e.g. 1.85.1) is WANT (e.g. 1.85) or newer.
version_at_least() {
  local have want i
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a want <<<"$2"
  for i in 0 1 2; do
    (( ${have[i]:-0} > ${want[i]:-0} )) && return 0
    (( ${have[i]:-0} < ${want[i]:-0} )) && return 1
  done
  return 0
}

# need_rust_toolchain: cargo and rustc present and new enough, or die saying
# how to install one.
need_rust_toolchain() {
  local want have tool install
  want="$(workspace_rust_version)"
  install="install one with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain stable, then . \"\$HOME/.cargo/env\" (or \`rustup update stable\` when rustup is there)"
  for tool in cargo rustc; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: orderstream needs Rust $want or newer; $install"
  done
  have="$(rustc --version 2>/dev/null | awk '{print $2}')"
  have="${have%%-*}"
  [[ "$have" =~ ^[0-9]+\.[0-9]+ ]] || die "cannot read the version of rustc ($(rustc --version 2>&1 | head -n 1)); orderstream needs Rust $want or newer; $install"
  version_at_least "$have" "$want" || die "rustc $have is older than $want, the workspace's rust-version; $install"
}
