# Sourced by scripts/kafka.sh: the broker's jars, assembled by Maven from
# scripts/kafka/pom.xml (Maven Central) into DIR/libs, and the stamp that
# tells whether they match the pom. Uses kafka.sh's POM, LIBS, DIR, PROG.

pom_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1; }
pom_stamp()   { echo "kafka.version=$(pom_version) pom.sha256=$(sha256sum "$POM" | cut -d' ' -f1)"; }
libs_current() { stamp_matches "$LIBS" "$(pom_stamp)"; }

# --- install -------------------------------------------------------------------
do_install() {
  [[ -f "$POM" ]] || die "$POM not found"
  local version; version="$(pom_version)"
  [[ -n "$version" ]] || die "no <kafka.version> in $POM"
  if libs_current; then
    echo "$PROG: Kafka $version already installed in $LIBS"
    return 0
  fi
  ! any_node_running || die "Kafka in $DIR is running with other jars; stop it before re-installing"
  need_java
  mkdir -p "$DIR"
  local t0=$SECONDS
  echo "$PROG: installing Kafka $version into $LIBS (Maven Central) ..."
  maven_jars "$POM" "$LIBS" "$(pom_stamp)" "kafka_2.13-$version.jar" "$DIR/install.log"
  echo "$PROG: installed Kafka $version ($(find "$LIBS" -name '*.jar' | wc -l) jars) in $((SECONDS - t0)) s"
}
