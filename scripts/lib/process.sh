# What every script that starts or stops a background process shares
# (scripts/kafka.sh, scripts/connect.sh, scripts/postgres.sh, scripts/run.sh,
# scripts/down.sh): the Java check, pid files, liveness, ports, starting and
# stopping a process, and the Maven Central jar fetch. Source it after
# defining PROG and die(). A pid file is only ever signalled once the pid is
# known to still be the process started: by its command line (runs) or by
# its start time (owned_pid); scripts/test-process.sh tests the refusal.

# need_java_for WHAT: Java 17 or newer on the PATH, or die saying WHAT needs it.
need_java_for() {
  command -v java >/dev/null || die "java not found; $1 needs Java 17+ (run: bash scripts/deps.sh)"
  local v
  v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  [[ "$v" == 1.* ]] && v="${v#1.}"
  v="${v%%.*}"
  if ! [[ "$v" =~ ^[0-9]+$ ]] || (( v < 17 )); then
    die "java $v found; $1 needs Java 17+ (run: bash scripts/deps.sh)"
  fi
}

# pid_in FILE: the pid a pid file holds, or nothing.
pid_in() { if [[ -f "$1" ]]; then tr -dc '0-9' <"$1"; fi; }

# runs PID COMMAND: PID is a live process whose command line contains
# COMMAND (so a pid file left behind never names someone else's process).
runs() {
  local pid="$1"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# alive PID: running and not a zombie (PID 1 here may reap orphans only after a delay).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_exit PID WHAT TIMEOUT: waits for PID to exit; SIGKILL after TIMEOUT seconds.
wait_exit() {
  local pid="$1" what="$2" deadline=$((SECONDS + $3))
  while alive "$pid"; do
    if (( SECONDS >= deadline )); then
      echo "$PROG: $what (pid $pid) did not exit within ${3}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
}

# stop_pid PID WHAT TIMEOUT: SIGTERM, then as wait_exit.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait_exit "$@"
}

# start_time PID: when PID started (clock ticks since boot, /proc/PID/stat's
# 22nd field), or nothing. With the pid it names one process for good: a
# process that later gets the same pid has another start time.
start_time() {
  local stat fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  # The command name (2nd field) may hold spaces: count from after its ')'.
  read -r -a fields <<<"${stat##*) }"
  echo "${fields[19]:-}"
}

# start_background PIDFILE LOG COMMAND...: COMMAND in its own session, so it
# outlives the caller's terminal, output appended to LOG; its pid into
# PIDFILE (the pid alone: `kill "$(cat PIDFILE)"` works by hand) and its
# start time into PIDFILE.start, for owned_pid.
start_background() {
  local pidfile="$1" log="$2" pid
  shift 2
  setsid nohup "$@" >>"$log" 2>&1 </dev/null &
  pid=$!
  start_time "$pid" >"$pidfile.start"
  echo "$pid" >"$pidfile"
}

# owned_pid PIDFILE: the pid PIDFILE names while that process still runs and
# is the one start_background started (same start time); else nothing. A pid
# file left behind by a crash or a reboot may name someone else's process by
# now, which must never be signalled.
owned_pid() {
  local pid recorded
  pid="$(pid_in "$1")"
  [[ -n "$pid" ]] && alive "$pid" || return 0
  recorded="$(cat "$1.start" 2>/dev/null || true)"
  if [[ -n "$recorded" && "$(start_time "$pid")" == "$recorded" ]]; then echo "$pid"; fi
}

# adopt_pid PIDFILE COMMAND: a pid file written before start times were
# recorded (no PIDFILE.start) gets its process's start time if that process's
# command line contains COMMAND (runs), so owned_pid accepts it from then on.
adopt_pid() {
  local pid
  [[ -f "$1" && ! -f "$1.start" ]] || return 0
  pid="$(pid_in "$1")"
  if runs "$pid" "$2"; then start_time "$pid" >"$1.start"; fi
}

# stop_owned PIDFILE WHAT TIMEOUT: stop_pid on the process PIDFILE names if
# owned_pid says it is still ours; the pid file goes either way. Status 0 if
# it was stopped, 1 if it was not running (or the pid is someone else's now).
stop_owned() {
  local pid
  pid="$(owned_pid "$1")"
  [[ -z "$pid" ]] || stop_pid "$pid" "$2" "$3"
  rm -f "$1" "$1.start"
  [[ -n "$pid" ]]
}

# maven_jars POM TARGET STAMP REQUIRED LOG: the pom's runtime jars from
# Maven Central into TARGET, with STAMP in TARGET/.stamp. They are fetched
# beside it and swapped in whole, and only when the jar REQUIRED (a glob
# inside the folder) came too, so that jars of two versions never mix and a
# failed fetch leaves the old ones in place. Maven's output goes to LOG.
maven_jars() {
  local pom="$1" target="$2" stamp="$3" required="$4" log="$5" tmp="$2.new"
  command -v mvn >/dev/null || die "mvn not found; run: bash scripts/deps.sh"
  rm -rf "$tmp"
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "mvn could not fetch the jars of $pom (full log: $log); check access to Maven Central"
  fi
  compgen -G "$tmp/$required" >/dev/null || die "mvn finished but no $required came; see $log"
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$target"
  mv "$tmp" "$target"
}

# stamp_matches TARGET STAMP: TARGET holds the jars of exactly this STAMP.
stamp_matches() { [[ -f "$1/.stamp" && "$(<"$1/.stamp")" == "$2" ]]; }
