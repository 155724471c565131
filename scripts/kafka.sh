#!/usr/bin/env bash
# Apache Kafka for the tests, benchmarks and local runs: a single-node KRaft broker
# (combined broker + controller) on free loopback ports, assembled from Maven Central.
#
#   scripts/kafka.sh install      fetch the broker's jars with Maven into the tools cache
#                                 (once; later calls print the cached path at once)
#   scripts/kafka.sh start DIR    format a fresh KRaft log in DIR, start the broker, and
#                                 print `bootstrap=127.0.0.1:PORT` once it answers
#   scripts/kafka.sh stop DIR     stop the broker started in DIR (SIGTERM, then SIGKILL)
#
# Cache: $CHURNWATCH_TOOLS (default ~/.cache/churnwatch/tools)/kafka-$KAFKA_VERSION; Maven's
# own cache (~/.m2) keeps the downloads. Heap: $KAFKA_HEAP_OPTS (default -Xms256m -Xmx768m).
# In DIR: server.properties, kafka.pid, kafka.log (the broker's log), data/.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
# The broker logs through SLF4J 1.7 (Kafka's dependency); this binds it to log4j2,
# the same log4j-core version Kafka itself depends on. Without a binding it logs nothing.
LOG4J_VERSION=2.25.5
TOOLS="${CHURNWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/churnwatch/tools}"
HOME_DIR="$TOOLS/kafka-$KAFKA_VERSION"

log() { printf '[kafka.sh] %s\n' "$*" >&2; }
die() { printf '[kafka.sh] error: %s\n' "$*" >&2; exit 2; }

install() {
  local stamp="$HOME_DIR/.installed"
  if [[ -f "$stamp" ]]; then
    echo "$HOME_DIR"
    return
  fi
  command -v java >/dev/null || die "java is not installed: install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "mvn is not installed: install Maven (Debian: apt-get install maven)"
  log "assembling Apache Kafka $KAFKA_VERSION from Maven Central into $HOME_DIR (once; ~1 min)"
  mkdir -p "$HOME_DIR"
  local tmp
  tmp=$(mktemp -d)
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>churnwatch.tools</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$HOME_DIR/libs.tmp"
  # -B: no colour codes; progress of each download goes to stderr.
  mvn -B -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$HOME_DIR/libs.tmp" \
    -Dorg.slf4j.simpleLogger.log.org.apache.maven.cli.transfer.Slf4jMavenTransferListener=warn >&2 ||
    die "Maven could not fetch Apache Kafka $KAFKA_VERSION (see above); set KAFKA_VERSION to another 4.x release to try it"
  rm -rf "$HOME_DIR/libs" && mv "$HOME_DIR/libs.tmp" "$HOME_DIR/libs"
  rm -rf "$tmp"
  cat >"$HOME_DIR/log4j2.properties" <<'EOF'
# Broker log: INFO to stdout (redirected to DIR/kafka.log); the chatty parts at WARN.
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = INFO
logger.org.name = org.apache.kafka
logger.org.level = WARN
logger.coordinator.name = org.apache.kafka.coordinator
logger.coordinator.level = INFO
EOF
  touch "$HOME_DIR/.installed"
  log "Apache Kafka $KAFKA_VERSION ready: $(find "$HOME_DIR/libs" -name '*.jar' | wc -l) jars"
  echo "$HOME_DIR"
}

# A free loopback port (the kernel picks it; a tiny race with other programs is possible
# and shows as a start-up failure that names the port).
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  else
    local p
    while :; do
      p=$((20000 + RANDOM % 40000))
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
  fi
}

java_cmd() { # DIR, then the main class and its arguments
  local dir=$1
  shift
  local heap
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
  # setsid: the broker gets no terminal signals meant for the caller (Ctrl-C of a test).
  setsid java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$HOME_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$dir" -cp "$HOME_DIR/libs/*" "$@"
}

start() {
  local dir=${1:?usage: scripts/kafka.sh start DIR}
  install >/dev/null
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/kafka.pid" ]] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid")): scripts/kafka.sh stop $dir"
  fi
  local port cport
  port=$(free_port)
  cport=$(free_port)
  while [[ "$cport" == "$port" ]]; do cport=$(free_port); done
  rm -rf "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.threads=1
log.cleaner.backoff.ms=1000
num.network.threads=2
num.io.threads=4
${KAFKA_EXTRA_PROPERTIES:-}
EOF
  # A cluster id as Kafka's `random-uuid` makes it (16 random bytes, URL-safe base64, no
  # leading '-'), without starting a JVM for it.
  local cluster=-
  while [[ $cluster == -* ]]; do
    cluster=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  java_cmd "$dir" kafka.tools.StorageTool format --standalone -t "$cluster" \
    -c "$dir/server.properties" >>"$dir/kafka.log" 2>&1 ||
    die "formatting the KRaft log in $dir failed; see $dir/kafka.log"
  (
    exec </dev/null >>"$dir/kafka.log" 2>&1
    java_cmd "$dir" kafka.Kafka "$dir/server.properties" &
    echo $! >"$dir/kafka.pid"
  )
  local pid t0=$SECONDS
  pid=$(cat "$dir/kafka.pid")
  until grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$dir/kafka.log" >&2
      die "the broker exited during start-up (log above; whole log: $dir/kafka.log)"
    fi
    if ((SECONDS - t0 > 90)); then
      tail -n 30 "$dir/kafka.log" >&2
      die "the broker did not start within 90 s (log above; whole log: $dir/kafka.log)"
    fi
    sleep 0.2
  done
  echo "bootstrap=127.0.0.1:$port"
}

stop() {
  local dir=${1:?usage: scripts/kafka.sh stop DIR}
  [[ -f "$dir/kafka.pid" ]] || return 0
  local pid
  pid=$(cat "$dir/kafka.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true # a test may have left it stopped
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: scripts/kafka.sh install | start DIR | stop DIR" >&2; exit 2 ;;
esac
