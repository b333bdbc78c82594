#!/usr/bin/env bash
# The pid-file rules of scripts/lib/process.sh, through `make down`
# (scripts/down.sh) on a folder of its own, without services: a pid file that
# names a process other than the one `make run` started (its pid reused) is
# never signalled; the process that was started is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

PROG=test-process
fail() { echo "$PROG: FAILED: $*" >&2; exit 1; }
die() { fail "$*"; }
. scripts/lib/process.sh

local_dir="$(mktemp -d)"
stranger=""
cleanup() {
  [[ -z "$stranger" ]] || kill -KILL "$stranger" 2>/dev/null || true
  local pid; pid="$(owned_pid "$local_dir/run/consumer.pid")"
  [[ -z "$pid" ]] || kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$local_dir"
}
trap cleanup EXIT
mkdir -p "$local_dir/run" "$local_dir/log"

# Someone else's process under the producer's recorded pid: the pid file
# names it, but the start time recorded with it is another process's.
sleep 300 &
stranger=$!
disown "$stranger"  # no "Killed" notice when the cleanup ends it
echo "$stranger" >"$local_dir/run/producer.pid"
echo $(( $(start_time "$stranger") + 1 )) >"$local_dir/run/producer.pid.start"
[[ -z "$(owned_pid "$local_dir/run/producer.pid")" ]] || fail "owned_pid accepted a pid whose start time differs"

# The consumer as `make run` starts it.
start_background "$local_dir/run/consumer.pid" "$local_dir/log/consumer.log" sleep 300
started="$(owned_pid "$local_dir/run/consumer.pid")"
[[ -n "$started" ]] || fail "owned_pid did not accept the process start_background started"

out="$(LOCAL="$local_dir" bash scripts/down.sh 2>&1)" || fail "make down exited $?: $out"
alive "$stranger" || fail "make down signalled pid $stranger, which its pid file named but which make run never started: $out"
! alive "$started" || fail "make down left the consumer it started (pid $started) running: $out"
[[ ! -e "$local_dir/run/producer.pid" && ! -e "$local_dir/run/consumer.pid" ]] || fail "make down left pid files behind"

echo "$PROG: a reused pid left alone, the started process stopped"
