#!/usr/bin/env bash
# `make clean` asks first: it deletes LOCAL (default .local), and with it the
# warehouse (PostgreSQL's data: every order loaded), Kafka's topics and the
# producer's saved positions; none of it can be brought back.
#
# YES=1 confirms without asking (scripts, CI). On a terminal it asks for
# "yes"; without a terminal and without YES=1 it refuses. Exit 0: go on.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCAL="${LOCAL:-.local}"
YES="${YES:-}"

[[ -e "$LOCAL" ]] || exit 0
[[ -n "$YES" && "$YES" != 0 ]] && exit 0
what="$LOCAL/ and everything in it: the warehouse (PostgreSQL's data in $LOCAL/pg, every order loaded), Kafka's topics, the producer's saved positions"
if [[ ! -t 0 ]]; then
  echo "clean: refused, nothing stopped or deleted: \`make clean\` deletes $what. Confirm with \`make clean YES=1\` (or run it on a terminal); \`make down\` stops everything and keeps the data" >&2
  exit 1
fi
printf 'clean: this stops everything and deletes %s.\nType "yes" to delete: ' "$what" >&2
read -r answer || answer=""
[[ "$answer" == yes ]] || { echo "clean: nothing stopped or deleted" >&2; exit 1; }
