#!/usr/bin/env bash
# A local Apache Kafka cluster of three KRaft nodes, each a combined broker and
# controller (a three-voter quorum), for running the stack the way production
# runs it: topics replicated 3 times, writes acknowledged by at least 2 replicas
# (min.insync.replicas=2), so that losing any one broker loses nothing and
# stops nothing. Each node is one deploy/kafka.sh broker with its own home and
# ports; the jars are shared.
#
# Usage: deploy/kafka-cluster.sh COMMAND
#   start            start every node, return when all serve clients
#   stop             stop every node
#   status           each node's state and the partitions missing a replica;
#                    exit 0 only if every node runs and every replica is in sync
#   kill N           SIGKILL node N (failure drills)
#   start-node N     start node N again, return when it serves clients
#   stop-node N      stop node N cleanly (controlled shutdown)
#   wait-in-sync     wait until every partition has all its replicas in sync
#   bootstrap        print the client addresses the services must use
#
# Environment (all optional):
#   KAFKA_NODES            number of nodes                       (default 3)
#   KAFKA_PORT             client port of node 1                 (default 9092)
#                          node N: client KAFKA_PORT+2(N-1), controller that+1,
#                          so 9092/9093, 9094/9095, 9096/9097 by default
#   KAFKA_HOME             the cluster's home; node N in node-N/ (default <repo>/.local/kafka-cluster)
#   KAFKA_REPLICATION_FACTOR   replicas of every topic           (default 3)
#   KAFKA_MIN_INSYNC_REPLICAS  replicas that must have a write   (default 2)
#   KAFKA_BROKER_SESSION_TIMEOUT_MS  a dead broker is fenced and loses its
#                          leaderships after this                (default 6000)
#   KAFKA_OFFSETS_TOPIC_PARTITIONS  partitions of __consumer_offsets (default 12:
#                          a local cluster has few groups, and each partition is
#                          three replicas to recover and resync after a crash)
#   KAFKA_SYNC_TIMEOUT     seconds for wait-in-sync              (default 120)
#   KAFKA_BOOTSTRAP_SERVERS  printed by `bootstrap` instead of the derived list
#   KAFKA_LIBS, KAFKA_HEAP, KAFKA_START_TIMEOUT, KAFKA_PYTHON, JAVA_HOME: as deploy/kafka.sh
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
KAFKA_SH="$SCRIPT_DIR/kafka.sh"

KAFKA_PORT_GIVEN="${KAFKA_PORT:+yes}"
KAFKA_NODES="${KAFKA_NODES:-3}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_HOME="${KAFKA_HOME:-$REPO_ROOT/.local/kafka-cluster}"
KAFKA_LIBS="${KAFKA_LIBS:-$REPO_ROOT/.local/kafka/libs}"
KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-3}"
KAFKA_MIN_INSYNC_REPLICAS="${KAFKA_MIN_INSYNC_REPLICAS:-2}"
KAFKA_BROKER_SESSION_TIMEOUT_MS="${KAFKA_BROKER_SESSION_TIMEOUT_MS:-6000}"
KAFKA_OFFSETS_TOPIC_PARTITIONS="${KAFKA_OFFSETS_TOPIC_PARTITIONS:-12}"
KAFKA_SYNC_TIMEOUT="${KAFKA_SYNC_TIMEOUT:-120}"

log() { printf 'kafka-cluster.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$KAFKA_NODES" =~ ^[0-9]+$ ]] && ((KAFKA_NODES >= 2)) \
  || die "KAFKA_NODES=$KAFKA_NODES: a cluster has at least 2 nodes (one node: deploy/kafka.sh)"
((KAFKA_REPLICATION_FACTOR <= KAFKA_NODES)) \
  || die "KAFKA_REPLICATION_FACTOR=$KAFKA_REPLICATION_FACTOR exceeds KAFKA_NODES=$KAFKA_NODES"
((KAFKA_MIN_INSYNC_REPLICAS <= KAFKA_REPLICATION_FACTOR)) \
  || die "KAFKA_MIN_INSYNC_REPLICAS=$KAFKA_MIN_INSYNC_REPLICAS exceeds KAFKA_REPLICATION_FACTOR=$KAFKA_REPLICATION_FACTOR"

client_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
controller_port() { echo $((KAFKA_PORT + 2 * ($1 - 1) + 1)); }
node_home() { echo "$KAFKA_HOME/node-$1"; }

nodes() { seq 1 "$KAFKA_NODES"; }

check_node() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= KAFKA_NODES)) || die "node must be 1..$KAFKA_NODES, got '${1:-}'"
}

# A Kafka Uuid (16 random bytes, URL-safe base64 without padding); Kafka never
# hands out ids that start with '-', so neither do we.
random_uuid() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { printf '%s\n' "$id"; return; }
  done
}

# Kept in the cluster's home so every (re)start formats and joins the same
# cluster: one cluster id, one metadata directory id per voter.
ensure_ids() {
  local n file
  mkdir -p "$KAFKA_HOME"
  [[ -s "$KAFKA_HOME/cluster.id" ]] || random_uuid >"$KAFKA_HOME/cluster.id"
  for n in $(nodes); do
    file="$KAFKA_HOME/directory-$n.id"
    [[ -s "$file" ]] || random_uuid >"$file"
  done
}

# The initial voters, id@host:port:directory-id, as every node is formatted with.
quorum() {
  local n entries=()
  for n in $(nodes); do
    entries+=("$n@127.0.0.1:$(controller_port "$n"):$(tr -d '[:space:]' <"$KAFKA_HOME/directory-$n.id")")
  done
  (IFS=,; printf '%s\n' "${entries[*]}")
}

# Runs deploy/kafka.sh as node N of this cluster.
node() {
  local n="$1" home port controller voters cluster_id
  shift
  # Every value first: a prefix assignment below would change the inputs of the next.
  home="$(node_home "$n")"
  port="$(client_port "$n")"
  controller="$(controller_port "$n")"
  voters="$(quorum)"
  cluster_id="$(tr -d '[:space:]' <"$KAFKA_HOME/cluster.id")"
  KAFKA_NODES=1 \
    KAFKA_NODE_ID="$n" \
    KAFKA_HOME="$home" \
    KAFKA_PORT="$port" \
    KAFKA_CONTROLLER_PORT="$controller" \
    KAFKA_QUORUM="$voters" \
    KAFKA_CLUSTER_ID="$cluster_id" \
    KAFKA_LIBS="$KAFKA_LIBS" \
    KAFKA_REPLICATION_FACTOR="$KAFKA_REPLICATION_FACTOR" \
    KAFKA_MIN_INSYNC_REPLICAS="$KAFKA_MIN_INSYNC_REPLICAS" \
    KAFKA_BROKER_SESSION_TIMEOUT_MS="$KAFKA_BROKER_SESSION_TIMEOUT_MS" \
    KAFKA_OFFSETS_TOPIC_PARTITIONS="$KAFKA_OFFSETS_TOPIC_PARTITIONS" \
    KAFKA_BOOTSTRAP_SERVERS="" \
    "$KAFKA_SH" "$@"
}

fetch() { KAFKA_NODES=1 KAFKA_LIBS="$KAFKA_LIBS" "$KAFKA_SH" fetch; }

addresses() {
  local n list=()
  for n in $(nodes); do list+=("127.0.0.1:$(client_port "$n")"); done
  (IFS=,; printf '%s\n' "${list[*]}")
}

python_bin() {
  local py
  for py in "${KAFKA_PYTHON:-}" "$REPO_ROOT/.venv/bin/python" python3; do
    [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 && "$py" -c 'import aiokafka' >/dev/null 2>&1 \
      && { printf '%s\n' "$py"; return 0; }
  done
  die "no python with aiokafka (create .venv or set KAFKA_PYTHON)"
}

# Prints the partitions whose in-sync replicas are fewer than their replicas
# (one per line, "topic/partition isr=[..] replicas=[..]"); exits 2 if the
# cluster does not answer.
lagging_replicas() {
  timeout 30 "$(python_bin)" - "$(addresses)" <<'PY'
import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


async def main() -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    try:
        await admin.start()
        topics = await admin.list_topics()
        described = await admin.describe_topics(topics) if topics else []
    except KafkaError as exc:
        print(f"cluster not answering: {exc}", file=sys.stderr)
        return 2
    finally:
        await admin.close()
    for topic in described:
        for p in topic["partitions"]:
            if len(p["isr"]) < len(p["replicas"]):
                print(f"{topic['topic']}/{p['partition']} isr={sorted(p['isr'])} replicas={sorted(p['replicas'])}")
    return 0


sys.exit(asyncio.run(main()))
PY
}

# Runs one deploy/kafka.sh command on every node at once; fails if any fails.
run_on_every_node() {
  local n pids=() status=0
  for n in $(nodes); do
    node "$n" "$1" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || status=1; done
  return "$status"
}

port_open() {
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

# Before any node starts: a port taken by something else (another stack's
# broker) would leave a node dialling a foreign quorum.
check_ports() {
  local n port
  for n in "$@"; do
    node "$n" status 2>/dev/null && continue
    for port in "$(client_port "$n")" "$(controller_port "$n")"; do
      port_open "$port" && die "port $port (node $n) is in use by another process; set KAFKA_PORT (node N uses KAFKA_PORT+2(N-1) and the next port)"
    done
  done
  return 0
}

cmd_start() {
  local n t0=$SECONDS
  ensure_ids
  # shellcheck disable=SC2046  # one argument per node number
  check_ports $(nodes)
  fetch
  # Launch all first (no node can serve before a majority of voters runs), in
  # parallel: formatting a node's storage is a JVM run of its own.
  run_on_every_node launch
  for n in $(nodes); do node "$n" wait; done
  log "cluster ready on $(addresses) after $((SECONDS - t0))s (replication $KAFKA_REPLICATION_FACTOR, min.insync.replicas $KAFKA_MIN_INSYNC_REPLICAS)"
}

cmd_stop() {
  [[ -d "$KAFKA_HOME" ]] || { log "not running"; return 0; }
  # In parallel: stopped one by one, the last nodes would wait for a quorum
  # that has already gone.
  run_on_every_node stop
}

cmd_status() {
  local n ok=0 lagging
  [[ -s "$KAFKA_HOME/cluster.id" ]] || { log "not running (no cluster in $KAFKA_HOME)"; return 1; }
  for n in $(nodes); do node "$n" status || ok=1; done
  if lagging="$(lagging_replicas)"; then
    if [[ -n "$lagging" ]]; then
      log "partitions with a replica out of sync: $(wc -l <<<"$lagging")"
      printf '%s\n' "$lagging" >&2
      ok=1
    else
      log "every replica in sync"
    fi
  else
    ok=1
  fi
  return "$ok"
}

cmd_wait_in_sync() {
  local deadline=$((SECONDS + KAFKA_SYNC_TIMEOUT)) lagging=""
  while ((SECONDS < deadline)); do
    if lagging="$(lagging_replicas 2>/dev/null)" && [[ -z "$lagging" ]]; then
      log "every replica in sync"
      return 0
    fi
    sleep 0.5
  done
  printf '%s\n' "$lagging" >&2
  die "replicas not in sync within ${KAFKA_SYNC_TIMEOUT}s"
}

# An explicit KAFKA_BOOTSTRAP_SERVERS wins, but must not contradict an
# explicit KAFKA_PORT (services on another stack's broker would join its group).
cmd_bootstrap() {
  if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    addresses
    return 0
  fi
  if [[ -n "$KAFKA_PORT_GIVEN" && "$KAFKA_BOOTSTRAP_SERVERS," != *":$KAFKA_PORT,"* ]]; then
    die "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS does not name the cluster of KAFKA_PORT=$KAFKA_PORT ($(addresses)); unset one of them"
  fi
  printf '%s\n' "$KAFKA_BOOTSTRAP_SERVERS"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill) check_node "${2:-}"; ensure_ids; node "$2" kill ;;
  start-node) check_node "${2:-}"; ensure_ids; check_ports "$2"; node "$2" start ;;
  stop-node) check_node "${2:-}"; ensure_ids; node "$2" stop ;;
  wait-in-sync) cmd_wait_in_sync ;;
  bootstrap) cmd_bootstrap ;;
  fetch) fetch ;;
  *)
    echo "usage: $0 {start|stop|status|kill N|start-node N|stop-node N|wait-in-sync|bootstrap}" >&2
    exit 2
    ;;
esac
