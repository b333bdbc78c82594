#!/bin/bash
# The orderstream images' health check: GET /readyz on the metrics address.
#
# /readyz, not /healthz: a process that is alive but cannot work (Kafka or
# PostgreSQL unreachable, positions unsaveable) answers 503 there, so
# `docker compose ps` shows it unhealthy instead of healthy and idle.
#
# Usage: orderstream-healthcheck VARIABLE
#   VARIABLE  the binary's metrics-address variable, e.g.
#             ORDERSTREAM_PRODUCER_METRICS_ADDR (so a changed address is
#             followed without rebuilding the image)
#
# Uses bash's /dev/tcp: the runtime image carries no curl or wget.
# Exit codes: 0 ready (HTTP 200), 1 anything else (503: not ready; no answer).
set -u

addr="${!1:-}"
[[ "$addr" == *:* ]] || { echo "healthcheck: $1 is not HOST:PORT: '$addr'" >&2; exit 1; }
port="${addr##*:}"
host="${addr%:*}"
host="${host#[}"
host="${host%]}"
# A wildcard bind is reached on loopback.
case "$host" in 0.0.0.0 | :: | "") host=127.0.0.1 ;; esac

exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /readyz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
IFS= read -r -t 2 status <&3 || exit 1
[[ "$status" == "HTTP/1."?" 200"* ]]
