#!/usr/bin/env bash
# Install the system packages that orderstream's local services and build need.
#
# Usage: bash scripts/deps.sh
#
# Checks, and installs with apt-get only what is missing (Debian 12 / bookworm):
#   - PostgreSQL server + client   (/usr/lib/postgresql/*/bin/initdb, psql, pg_isready)
#   - Java 17 or newer              (java)            -> openjdk-17-jdk-headless
#   - Maven                         (mvn)             -> maven
#   - native build tools for the Rust rdkafka crate (librdkafka built from source):
#     gcc, g++, make, cmake, pkg-config, libssl-dev, zlib1g-dev
#   - Prometheus and promtool       (prometheus)      -> prometheus
#   - Alertmanager and amtool       (prometheus-alertmanager, amtool) -> prometheus-alertmanager
#   - Chromium and a font           (/usr/bin/chromium) -> chromium fonts-dejavu-core
#     (crates/e2e/tests/report.rs lays the analysis report out in headless Chromium)
#
# Prints one line per item: "present: ..." or "installed: ...".
# `apt-get update` runs at most once, and only if something must be installed.
# Must run as root (or with sudo available) when something is missing.
# Exit codes: 0 all present/installed, 1 an install failed or a check still fails afterwards.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

die() { echo "deps.sh: error: $*" >&2; exit 1; }

# --- checks: each prints nothing, returns 0 if the thing is present --------
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; }

have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }
have_pg_client() { have_cmd psql && have_cmd pg_isready; }
java_major() {
  # "openjdk version "17.0.15" ..." / "java version "1.8.0_..."" -> 17 / 8
  local v
  v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  [[ "$v" == 1.* ]] && v="${v#1.}"
  echo "${v%%.*}"
}
# The Debian package starts a system Prometheus where systemd runs; ours runs
# apart, on its own port and data folder, so only the binaries matter here.
have_prometheus() { have_cmd prometheus && have_cmd promtool; }
# Likewise for Alertmanager: ours runs on PORT_RUN_ALERTMANAGER, not the
# package's service.
have_alertmanager() { have_cmd prometheus-alertmanager && have_cmd amtool; }
# The report check needs a font too: --no-install-recommends skips chromium's.
have_chromium() { [[ -x /usr/bin/chromium ]] && have_pkg fonts-dejavu-core; }
have_java17() { have_cmd java && [[ "$(java_major)" =~ ^[0-9]+$ ]] && (( $(java_major) >= 17 )); }

# name | check | apt packages
ITEMS=(
  "postgresql server|have_pg_server|postgresql"
  "postgresql client (psql, pg_isready)|have_pg_client|postgresql-client"
  "java >= 17|have_java17|openjdk-17-jdk-headless"
  "maven (mvn)|have_cmd mvn|maven"
  "gcc|have_cmd gcc|gcc"
  "g++|have_cmd g++|g++"
  "make|have_cmd make|make"
  "cmake|have_cmd cmake|cmake"
  "pkg-config|have_cmd pkg-config|pkg-config"
  "libssl-dev|have_pkg libssl-dev|libssl-dev"
  "zlib1g-dev|have_pkg zlib1g-dev|zlib1g-dev"
  "prometheus + promtool|have_prometheus|prometheus"
  "alertmanager + amtool|have_alertmanager|prometheus-alertmanager"
  "curl|have_cmd curl|curl"
  "chromium + font (report check)|have_chromium|chromium fonts-dejavu-core"
)

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if have_cmd sudo; then SUDO=(sudo); fi
fi

updated=0
apt_install() {
  have_cmd apt-get || die "apt-get not found: this script supports Debian/Ubuntu only; install '$*' by hand"
  if [[ "$(id -u)" -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    die "need root to install '$*' (run as root or install sudo)"
  fi
  if (( updated == 0 )); then
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    updated=1
  fi
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

for item in "${ITEMS[@]}"; do
  IFS='|' read -r name check pkgs <<<"$item"
  if $check; then
    echo "present:   $name"
    continue
  fi
  # shellcheck disable=SC2086  # pkgs is a space-separated list on purpose
  apt_install $pkgs
  $check || die "$name still missing after 'apt-get install $pkgs'"
  echo "installed: $name ($pkgs)"
done
