#!/usr/bin/env bash
# Run a project-local PostgreSQL cluster for development and tests.
#
# Usage: bash scripts/postgres.sh start|stop|status|url DIR PORT
#   DIR   cluster folder, e.g. .local/pg or .local/test/pg (created on first start)
#   PORT  TCP port on 127.0.0.1, e.g. 5433
#
# Commands:
#   start   initdb on first use, then start the cluster and wait (max 60 s) until it
#           accepts connections; ensures login role `orderstream` (superuser for now)
#           and database `orderstream` owned by it. No-op if already running.
#   stop    fast shutdown (waits max 60 s). Not an error if it is not running.
#   status  prints "running ..." and exits 0, or "not running" and exits 3.
#   url     prints postgres://orderstream@127.0.0.1:PORT/orderstream
# Exit codes: 0 ok, 1 error (message on stderr), 2 usage, 3 not running (status only).
#
# Layout inside DIR:
#   data/   PGDATA (its own cluster, not the system one)
#   run/    unix socket directory
#   log/    server logs (postgresql-*.log) and startup.log (pg_ctl output)
#
# Security: authentication is `trust` (no password) for local and loopback
# connections. Acceptable for this dev/test cluster only: it listens on
# 127.0.0.1 only and lives in the developer's (git-ignored) tree.
#
# PostgreSQL refuses to run as root: as root, the server and initdb run as the
# `postgres` system user (from the postgresql package) via runuser, and DIR is
# chowned to it. As a non-root user they run as that user.
#
# Settings (dev box, but durable: the tests check durability): fsync=on,
# synchronous_commit=on, max_connections=200, shared_buffers=256MB.
set -euo pipefail

PROG="postgres.sh"
die()   { echo "$PROG: error: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib/process.sh"
usage() { sed -n '2,/^# Exit codes/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

[[ $# -eq 3 ]] || usage
CMD="$1" DIR_ARG="$2" PORT="$3"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65535 )); then
  die "PORT must be a number 1-65535, got '$PORT'"
fi
[[ -n "$DIR_ARG" ]] || die "DIR must not be empty"

DIR="$(realpath -m -- "$DIR_ARG")"
DATA="$DIR/data"
RUN="$DIR/run"
LOG="$DIR/log"
ROLE="orderstream"
DB="orderstream"
START_TIMEOUT=60

url() { echo "postgres://$ROLE@127.0.0.1:$PORT/$DB"; }

# --- binaries: those matching an existing cluster, else the newest installed ---
find_bindir() {
  local ver bindir
  if [[ -f "$DATA/PG_VERSION" ]]; then
    ver="$(<"$DATA/PG_VERSION")"
    bindir="/usr/lib/postgresql/$ver/bin"
    [[ -x "$bindir/pg_ctl" ]] || die "cluster in $DATA is PostgreSQL $ver but $bindir/pg_ctl is missing; install postgresql-$ver or remove $DIR"
  else
    bindir="$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1 || true)"
    [[ -n "$bindir" ]] || die "PostgreSQL server not found (/usr/lib/postgresql/*/bin/initdb); run: bash scripts/deps.sh"
    bindir="${bindir%/initdb}"
  fi
  echo "$bindir"
}

# --- run as the cluster owner -----------------------------------------------
if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "system user 'postgres' not found (it comes with the postgresql package); run: bash scripts/deps.sh"
  command -v runuser >/dev/null || die "runuser not found (package util-linux)"
  as_owner() { (cd / && runuser -u postgres -- "$@"); }
  OWNER=postgres
else
  as_owner() { (cd / && "$@"); }
  OWNER="$(id -un)"
fi

# pg_ctl status: 0 running, 3 not running, 4 no/invalid data dir
pg_status() {
  [[ -f "$DATA/PG_VERSION" ]] || return 3
  local rc=0
  as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || rc=$?
  return "$rc"
}
running_pid()  { sed -n 1p "$DATA/postmaster.pid" 2>/dev/null || true; }
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true; }


psql_admin() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres -d postgres "$@"
}

init_cluster() {
  echo "$PROG: creating cluster in $DATA"
  mkdir -p "$DIR"
  # The owner must be able to reach DIR through its parents.
  if [[ "$OWNER" == postgres ]]; then
    chown postgres:postgres "$DIR"
    runuser -u postgres -- test -w "$DIR" \
      || die "user 'postgres' cannot write $DIR (a parent folder is not searchable by it); use a DIR under a world-searchable path"
  fi
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=trust \
    --encoding=UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
    || die "initdb failed; see $DIR/initdb.log"
  # Our settings live in orderstream.conf (rewritten on every start).
  echo "include_if_exists = 'orderstream.conf'" >>"$DATA/postgresql.conf"
}

write_conf() {
  cat >"$DATA/orderstream.conf" <<EOF
# Written by scripts/postgres.sh on every start; edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = on
log_directory = '$LOG'
log_filename = 'postgresql-%Y-%m-%d.log'
log_line_prefix = '%m [%p] %q%u@%d '
log_file_mode = 0644
log_timezone = 'UTC'
timezone = 'UTC'
EOF
  [[ "$OWNER" == postgres ]] && chown postgres:postgres "$DATA/orderstream.conf"
  return 0
}

ensure_role_and_db() {
  psql_admin -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN SUPERUSER;
      END IF;
    END \$\$;" || die "could not create role $ROLE"
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
    psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" || die "could not create database $DB"
  fi
}

do_start() {
  BIN="$(find_bindir)"
  if pg_status; then
    local p; p="$(running_port)"
    [[ "$p" == "$PORT" ]] || die "cluster in $DIR is already running on port $p, not $PORT; stop it first"
    echo "$PROG: already running (pid $(running_pid)) on 127.0.0.1:$PORT"
    ensure_role_and_db
    return 0
  fi
  port_in_use "$PORT" && die "port 127.0.0.1:$PORT is already in use by another process"

  [[ -f "$DATA/PG_VERSION" ]] || init_cluster
  mkdir -p "$RUN" "$LOG"
  [[ "$OWNER" == postgres ]] && chown postgres:postgres "$DIR" "$RUN" "$LOG"
  write_conf

  # No -w: we poll ourselves so that an early crash is reported with the log.
  as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG/startup.log" -W >/dev/null \
    || die "pg_ctl start failed; see $LOG/startup.log and $LOG/postgresql-*.log"
  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres; do
    if (( SECONDS >= deadline )); then
      die "PostgreSQL did not accept connections within ${START_TIMEOUT}s; see $LOG/startup.log and $LOG/"
    fi
    if [[ ! -f "$DATA/postmaster.pid" ]] && (( SECONDS - t0 >= 3 )); then
      tail -n 20 "$LOG/startup.log" >&2 || true
      die "PostgreSQL exited during startup; see $LOG/startup.log and $LOG/"
    fi
    sleep 0.2
  done
  ensure_role_and_db
  echo "$PROG: started (pid $(running_pid)) on 127.0.0.1:$PORT, data in $DATA"
}

do_stop() {
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    echo "$PROG: not running (no cluster in $DIR)"
    return 0
  fi
  BIN="$(find_bindir)"
  if ! pg_status; then
    echo "$PROG: not running"
    return 0
  fi
  local pid; pid="$(running_pid)"
  as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null \
    || die "pg_ctl stop failed (pid $pid); see $LOG/"
  echo "$PROG: stopped (pid $pid)"
}

do_status() {
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    echo "not running (no cluster in $DIR)"
    exit 3
  fi
  BIN="$(find_bindir)"
  if pg_status; then
    echo "running (pid $(running_pid)) on 127.0.0.1:$(running_port), data in $DATA"
    exit 0
  fi
  echo "not running"
  exit 3
}

case "$CMD" in
  start)  do_start ;;
  stop)   do_stop ;;
  status) do_status ;;
  url)    url ;;
  *)      usage ;;
esac
