# What scripts/kafka.sh, scripts/connect.sh and scripts/postgres.sh share:
# the Java check, pid files, liveness, ports, stopping a process, and the
# Maven Central jar fetch. Source it after defining PROG and die().

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
