#!/bin/bash
# The orderstream images' health check: GET /healthz on the metrics address.
#
# Usage: orderstream-healthcheck VARIABLE
#   VARIABLE  the binary's metrics-address variable, e.g.
#             ORDERSTREAM_PRODUCER_METRICS_ADDR (so a changed address is
#             followed without rebuilding the image)
#
# Uses bash's /dev/tcp: the runtime image carries no curl or wget.
# Exit codes: 0 healthy (HTTP 200), 1 anything else.
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
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
IFS= read -r -t 2 status <&3 || exit 1
[[ "$status" == "HTTP/1."?" 200"* ]]
