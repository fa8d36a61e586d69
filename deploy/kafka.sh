#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for
# development, tests and CI, without Docker: the broker jars come from Maven
# Central (deploy/kafka/pom.xml) and run on the machine's Java 17+.
#
# Usage: deploy/kafka.sh {fetch|start|stop|status|kill|launch|wait|bootstrap}
#   launch / wait: start without waiting / wait until ready (a cluster starts
#   every node before any can be ready); kill: SIGKILL (failure tests);
#   bootstrap: print the client address the services must use.
#
# Environment (all optional):
#   KAFKA_PORT             client listener port            (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener port  (default KAFKA_PORT+1)
#   KAFKA_NODES            1 (default); more runs deploy/kafka-cluster.sh instead
#   KAFKA_HOME             config, data, logs, pid file    (default <repo>/.local/kafka)
#   KAFKA_LIBS             broker jars, shared by brokers  (default <repo>/.local/kafka/libs)
#   KAFKA_HEAP             JVM heap (-Xms and -Xmx)        (default 512m)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness   (default 90)
#   KAFKA_PYTHON           python with aiokafka for the readiness probe
#                          (default: <repo>/.venv/bin/python, then python3)
#   JAVA_HOME              use $JAVA_HOME/bin/java instead of java on PATH
#   KAFKA_BOOTSTRAP_SERVERS  printed by `bootstrap` instead of the derived address
#
# Set by deploy/kafka-cluster.sh for each node of a cluster:
#   KAFKA_NODE_ID          node.id                         (default 1)
#   KAFKA_QUORUM           initial voters id@host:port:directory-id,...
#                          (default: none, a standalone single-voter quorum)
#   KAFKA_CLUSTER_ID       cluster id shared by the nodes  (default: generated once)
#   KAFKA_REPLICATION_FACTOR / KAFKA_MIN_INSYNC_REPLICAS
#                          default replication of topics, incl. internal ones (1 / 1)
#   KAFKA_BROKER_SESSION_TIMEOUT_MS  a dead broker is fenced after this (9000)
#   KAFKA_OFFSETS_TOPIC_PARTITIONS   partitions of __consumer_offsets (50)
#
# A second broker for tests: point KAFKA_HOME elsewhere and pick other ports;
# KAFKA_LIBS stays shared so the jars are downloaded only once.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONF="$SCRIPT_DIR/kafka/log4j2.xml"

# Whether the caller chose the port (checked against KAFKA_BOOTSTRAP_SERVERS).
KAFKA_PORT_GIVEN="${KAFKA_PORT:+yes}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_NODES="${KAFKA_NODES:-1}"
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_QUORUM="${KAFKA_QUORUM:-}"
KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-1}"
KAFKA_MIN_INSYNC_REPLICAS="${KAFKA_MIN_INSYNC_REPLICAS:-1}"
KAFKA_BROKER_SESSION_TIMEOUT_MS="${KAFKA_BROKER_SESSION_TIMEOUT_MS:-9000}"
KAFKA_OFFSETS_TOPIC_PARTITIONS="${KAFKA_OFFSETS_TOPIC_PARTITIONS:-50}"
KAFKA_HOME="${KAFKA_HOME:-$REPO_ROOT/.local/kafka}"
KAFKA_LIBS="${KAFKA_LIBS:-$REPO_ROOT/.local/kafka/libs}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT=30

DATA_DIR="$KAFKA_HOME/data"
LOG_DIR="$KAFKA_HOME/logs"
PROPS="$KAFKA_HOME/server.properties"
PID_FILE="$KAFKA_HOME/kafka.pid"
CLUSTER_ID_FILE="$KAFKA_HOME/cluster.id"
# Records the voters the storage was formatted with: the voter endpoints are
# written into the metadata log (--standalone or --initial-controllers), so
# the controller ports cannot change afterwards without re-formatting.
FORMAT_STAMP="$DATA_DIR/.tthc-formatted"
OUT_FILE="$LOG_DIR/kafka.out"
MARKER="$KAFKA_LIBS/.tthc-fetched"

log() { printf 'kafka.sh[%s]: %s\n' "$KAFKA_NODE_ID" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The single source of truth for the version is the pom.
kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1
}

# Marker content: the pinned version plus a hash of the pom, so that any
# edit of the pom (e.g. a log4j bump) refreshes the libs folder.
expected_marker() {
  printf 'kafka_2.13-%s pom-sha256=%s\n' "$(kafka_version)" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    command -v java
  else
    die "java not found (Kafka 4 needs Java 17+): install openjdk-17-jre-headless or set JAVA_HOME"
  fi
}

jar_count() {
  # The trailing slash follows a libs folder that is a symlink to another checkout's.
  find "$KAFKA_LIBS/" -maxdepth 1 -name '*.jar' 2>/dev/null | wc -l
}

# Complete = fetched by this very pom, and no jar went missing since.
libs_complete() {
  [[ -f "$MARKER" ]] \
    && [[ "$(head -n1 "$MARKER")" == "$(expected_marker)" ]] \
    && [[ "$(sed -n 2p "$MARKER")" == "jars=$(jar_count)" ]] \
    && [[ -f "$KAFKA_LIBS/kafka_2.13-$(kafka_version).jar" ]]
}

cmd_fetch() {
  if libs_complete; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: apt-get install -y maven"
  local version tmp mvn_log
  version="$(kafka_version)"
  [[ -n "$version" ]] || die "cannot read <kafka.version> from $POM"
  log "fetching Kafka $version jars into $KAFKA_LIBS (Maven Central)"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  # Download into a temporary folder and swap it in, so an interrupted fetch
  # never leaves a half-filled libs folder that looks usable, and jars of an
  # older pinned version never linger on the classpath.
  tmp="$KAFKA_LIBS.tmp.$$"
  mvn_log="$tmp.log"
  rm -rf "$tmp"
  # -Dstyle.color=never: keep CI logs free of ANSI escapes.
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -DKAFKA_LIBS="$tmp" package >"$mvn_log" 2>&1; then
    cat "$mvn_log" >&2
    rm -rf "$tmp" "$mvn_log"
    die "mvn failed to fetch the Kafka jars"
  fi
  rm -f "$mvn_log"
  [[ -f "$tmp/kafka_2.13-$version.jar" ]] || { rm -rf "$tmp"; die "mvn ran but kafka_2.13-$version.jar is missing"; }
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  { expected_marker; printf 'jars=%s\n' "$(jar_count)"; } >"$MARKER"
  log "fetched $(jar_count) jars"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

# Prints the pid of our broker if it is alive (and really is a Kafka JVM,
# not an unrelated process that reused a stale pid).
running_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  printf '%s\n' "$pid"
}

# host:port of every voter: KAFKA_QUORUM's entries, or this node alone.
quorum_bootstrap() {
  if [[ -z "$KAFKA_QUORUM" ]]; then
    printf '127.0.0.1:%s\n' "$KAFKA_CONTROLLER_PORT"
    return
  fi
  local entry rest
  local -a entries endpoints=()
  IFS=, read -r -a entries <<<"$KAFKA_QUORUM"
  for entry in "${entries[@]}"; do
    rest="${entry#*@}"           # host:port:directory-id
    endpoints+=("${rest%:*}")    # host:port
  done
  (IFS=,; printf '%s\n' "${endpoints[*]}")
}

write_properties() {
  mkdir -p "$KAFKA_HOME" "$DATA_DIR" "$LOG_DIR"
  # Rewritten on every start so that port/env changes take effect.
  cat >"$PROPS" <<EOF
# Generated by deploy/kafka.sh on every start: edit the script, not this file.
process.roles=broker,controller
node.id=${KAFKA_NODE_ID}
controller.quorum.bootstrap.servers=$(quorum_bootstrap)
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA_DIR}
num.partitions=12
# One node: every topic, internal ones included, lives with one replica. A
# cluster (deploy/kafka-cluster.sh) replicates them all the same way, so a
# consumer group or an idempotent producer survives the loss of a broker.
default.replication.factor=${KAFKA_REPLICATION_FACTOR}
min.insync.replicas=${KAFKA_MIN_INSYNC_REPLICAS}
offsets.topic.replication.factor=${KAFKA_REPLICATION_FACTOR}
offsets.topic.num.partitions=${KAFKA_OFFSETS_TOPIC_PARTITIONS}
transaction.state.log.replication.factor=${KAFKA_REPLICATION_FACTOR}
transaction.state.log.min.isr=${KAFKA_MIN_INSYNC_REPLICAS}
share.coordinator.state.topic.replication.factor=${KAFKA_REPLICATION_FACTOR}
share.coordinator.state.topic.min.isr=${KAFKA_MIN_INSYNC_REPLICAS}
# A replica that lost its leadership must not take it back with missing
# records: data acknowledged with acks=all stays acknowledged.
unclean.leader.election.enable=false
# The controller fences a broker that stopped heartbeating after this long and
# moves its leaderships; until then its partitions take no writes.
broker.session.timeout.ms=${KAFKA_BROKER_SESSION_TIMEOUT_MS}
broker.heartbeat.interval.ms=$((KAFKA_BROKER_SESSION_TIMEOUT_MS / 6))
# Tests start and stop consumer groups constantly: no 3 s join delay.
group.initial.rebalance.delay.ms=0
# Topics are created explicitly by the services/tests; a typo must fail loudly.
auto.create.topics.enable=false
# Let clients use short session timeouts (6000 ms) so a killed consumer's
# partitions are reassigned quickly in failure tests.
# Classic protocol (aiokafka): the client picks, the broker bounds it.
group.min.session.timeout.ms=1000
# KIP-848 consumer protocol: the broker decides the timeout itself.
group.consumer.min.session.timeout.ms=1000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=2000
EOF
}

format_storage() {
  local java="$1" cluster_id stamp
  local -a voters
  if [[ -z "$KAFKA_QUORUM" ]]; then
    stamp="controller=127.0.0.1:${KAFKA_CONTROLLER_PORT}"
    voters=(--standalone)
  else
    stamp="node=${KAFKA_NODE_ID} quorum=${KAFKA_QUORUM}"
    # Every voter is formatted with the same list; each finds its own
    # directory id in it by node.id (Kafka 4.1, dynamic quorum).
    voters=(--initial-controllers "$KAFKA_QUORUM")
  fi
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    if [[ -f "$FORMAT_STAMP" && "$(cat "$FORMAT_STAMP")" != "$stamp" ]]; then
      die "storage in $DATA_DIR was formatted with $(cat "$FORMAT_STAMP"), now $stamp; use the old ports or delete $DATA_DIR"
    fi
    return 0
  fi
  # Keep the cluster id outside data/ so a re-format (after deleting data/)
  # reuses it and clients that cached it are not confused. The nodes of a
  # cluster are handed the cluster's id.
  if [[ -n "${KAFKA_CLUSTER_ID:-}" ]]; then
    printf '%s\n' "$KAFKA_CLUSTER_ID" >"$CLUSTER_ID_FILE"
  elif [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    "$java" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid >"$CLUSTER_ID_FILE.tmp" 2>>"$LOG_DIR/format.log"
    mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
  fi
  cluster_id="$(tr -d '[:space:]' <"$CLUSTER_ID_FILE")"
  [[ -n "$cluster_id" ]] || die "empty cluster id in $CLUSTER_ID_FILE"
  log "formatting storage $DATA_DIR (cluster id $cluster_id)"
  # -g (--ignore-formatted) keeps this idempotent should meta.properties be
  # checked differently by a future Kafka version.
  if ! "$java" -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOG_DIR" \
      -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format "${voters[@]}" \
      -t "$cluster_id" -c "$PROPS" -g >>"$LOG_DIR/format.log" 2>&1; then
    tail -n 30 "$LOG_DIR/format.log" >&2 || true
    die "kafka storage format failed"
  fi
  printf '%s\n' "$stamp" >"$FORMAT_STAMP"
}

# Pick a python that has aiokafka for a real metadata request; empty if none.
probe_python() {
  local py
  for py in "${KAFKA_PYTHON:-}" "$REPO_ROOT/.venv/bin/python" python3; do
    [[ -n "$py" ]] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import aiokafka' >/dev/null 2>&1; then
      printf '%s\n' "$py"
      return 0
    fi
  done
  return 0
}

# One metadata round trip through the client listener: proves the broker
# serves requests, not only that the socket is bound.
metadata_ok() {
  local py="$1"
  timeout 20 "$py" - "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 <<'PY'
import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient


async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


asyncio.run(main())
PY
}

print_log_tail() {
  log "---- last lines of $OUT_FILE ----"
  tail -n 60 "$OUT_FILE" >&2 2>/dev/null || true
}

wait_ready() {
  local pid="$1" py deadline
  py="$(probe_python)"
  deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      print_log_tail
      die "broker process $pid exited during start-up"
    fi
    if port_open "$KAFKA_PORT"; then
      if [[ -n "$py" ]]; then
        metadata_ok "$py" && return 0
      elif grep -q 'Kafka Server started' "$OUT_FILE" 2>/dev/null; then
        return 0
      fi
    fi
    sleep 0.3
  done
  print_log_tail
  die "broker not ready within ${KAFKA_START_TIMEOUT}s (pid $pid still alive; stop it with: $0 stop)"
}

# Starts the broker without waiting for it to serve; returns at once if it
# already runs (or is still booting). The lock is kept until the script ends.
cmd_launch() {
  local java pid
  mkdir -p "$KAFKA_HOME"
  # Serialise concurrent starts/stops on the same KAFKA_HOME. The broker
  # itself must not inherit fd 9 (see 9>&- below) or it would hold the lock.
  exec 9>"$KAFKA_HOME/.lock"
  flock 9

  if pid="$(running_pid)"; then
    log "already running (pid $pid, port $KAFKA_PORT)"
    return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$KAFKA_PORT"; then
    die "port $KAFKA_PORT is already in use by another process (not the broker of $KAFKA_HOME); set KAFKA_PORT"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $KAFKA_CONTROLLER_PORT is already in use; set KAFKA_CONTROLLER_PORT"
  fi

  cmd_fetch
  java="$(java_bin)"
  write_properties
  format_storage "$java"

  # Some terminals export COLUMNS, which Kafka's tooling picks up and then
  # misformats its output; the broker must not depend on the caller's tty.
  unset COLUMNS
  # Extra JVM flags for experiments (e.g. a debugger); word-split on purpose.
  local -a extra_opts=()
  read -r -a extra_opts <<<"${KAFKA_OPTS:-}"
  : >"$OUT_FILE"
  # setsid: the broker gets its own session, so it survives the calling shell
  # (and Ctrl-C in it). The inner bash records its own pid and then execs
  # nohup -> java, so the recorded pid is the JVM's pid.
  # shellcheck disable=SC2016  # $$ and "$@" must expand in the inner shell
  setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$PID_FILE" \
    "$java" "-Xmx$KAFKA_HEAP" "-Xms$KAFKA_HEAP" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOG_DIR" \
    "${extra_opts[@]}" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$PROPS" \
    >"$OUT_FILE" 2>&1 </dev/null 9>&- &

  # The pid file is written by the child; wait briefly for it to appear.
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$PID_FILE" ]] && break
    sleep 0.1
  done
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || die "broker did not start (no pid written)"
  log "started pid $pid (home $KAFKA_HOME, port $KAFKA_PORT)"
}

cmd_wait() {
  local pid t0=$SECONDS
  pid="$(running_pid)" || die "not running (home $KAFKA_HOME)"
  wait_ready "$pid"
  log "ready (pid $pid) on 127.0.0.1:$KAFKA_PORT after $((SECONDS - t0))s"
}

cmd_start() {
  cmd_launch
  cmd_wait
}

cmd_stop() {
  local pid deadline
  mkdir -p "$KAFKA_HOME"
  exec 9>"$KAFKA_HOME/.lock"
  flock 9
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      log "stopped"
      return 0
    fi
    sleep 0.2
  done
  log "still alive after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  # SIGKILL is not instantaneous; make sure the port is released before we
  # claim success, or an immediate restart would hit "address in use".
  for ((deadline = 0; deadline < 50; deadline++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$PID_FILE"
  log "killed"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && port_open "$KAFKA_PORT"; then
    log "running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  log "not running"
  return 1
}

# SIGKILL, no shutdown: what a crash or an OOM kill does to a broker.
cmd_kill() {
  local pid i
  mkdir -p "$KAFKA_HOME"
  exec 9>"$KAFKA_HOME/.lock"
  flock 9
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$PID_FILE"
  log "killed pid $pid (SIGKILL)"
}

# The client address of this broker, for the services. An explicit
# KAFKA_BOOTSTRAP_SERVERS wins, but must not contradict an explicit
# KAFKA_PORT: services on another stack's broker would join its consumer group.
cmd_bootstrap() {
  local derived="127.0.0.1:$KAFKA_PORT"
  if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    printf '%s\n' "$derived"
    return 0
  fi
  # Any host will do (a name, localhost): the port is what tells one stack's broker from another's.
  if [[ -n "$KAFKA_PORT_GIVEN" && "$KAFKA_BOOTSTRAP_SERVERS," != *":$KAFKA_PORT,"* ]]; then
    die "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS does not name the broker of KAFKA_PORT=$KAFKA_PORT ($derived); unset one of them"
  fi
  printf '%s\n' "$KAFKA_BOOTSTRAP_SERVERS"
}

# More than one node, and this is not already one node of a cluster: the
# cluster script runs them all (it calls this script once per node).
if ((KAFKA_NODES > 1)) && [[ -z "$KAFKA_QUORUM" ]]; then
  exec "$SCRIPT_DIR/kafka-cluster.sh" "$@"
fi

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  launch) cmd_launch ;;
  wait) cmd_wait ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill) cmd_kill ;;
  bootstrap) cmd_bootstrap ;;
  *)
    echo "usage: $0 {fetch|start|stop|status|kill|launch|wait|bootstrap}" >&2
    exit 2
    ;;
esac
