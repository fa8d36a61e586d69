#!/usr/bin/env bash
# Starts or stops the three tthc-pulse services as background processes of this machine.
#   deploy/services.sh start   # returns once every service answers /readyz
#   deploy/services.sh stop
#   deploy/services.sh env     # prints the addresses the services would be started with
# Logs and pid files live in $RUN_DIR (default .local/run/). Settings come from the environment (see README).
#
# Every address comes from the variables that place the servers, so a second stack on the same
# machine needs only other ports: KAFKA_PORT (and KAFKA_NODES) give KAFKA_BOOTSTRAP_SERVERS
# (deploy/kafka.sh bootstrap), PG_PORT gives DATABASE_URL (deploy/postgres.sh url), INTAKE_PORT,
# REPORTING_PORT and AGGREGATOR_PORT the services' own ports. An explicit KAFKA_BOOTSTRAP_SERVERS or
# DATABASE_URL wins, but must not contradict an explicit KAFKA_PORT or PG_PORT.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${RUN_DIR:-$repo/.local/run}"
python="${PYTHON:-$repo/.venv/bin/python}"

die() { echo "services.sh: $*" >&2; exit 1; }

export INTAKE_PORT="${INTAKE_PORT:-8001}"
export REPORTING_PORT="${REPORTING_PORT:-8002}"
export AGGREGATOR_PORT="${AGGREGATOR_PORT:-8003}"
# The aggregator's default group (services/aggregator/config.py), named here for the check below.
export CONSUMER_GROUP="${CONSUMER_GROUP:-tthc-aggregator}"

# Only for start (stop must work whatever the environment says).
derive_addresses() {
  local bootstrap database_url
  # Assigned first and exported after: `export X="$(cmd)"` would hide a failing cmd.
  bootstrap="$("$repo/deploy/kafka.sh" bootstrap)"
  database_url="$("$repo/deploy/postgres.sh" url)"
  if [[ -n "${PG_PORT:-}" && "$database_url" != *":$PG_PORT/"* ]]; then
    die "DATABASE_URL does not name the PostgreSQL of PG_PORT=$PG_PORT; unset one of them"
  fi
  export KAFKA_BOOTSTRAP_SERVERS="$bootstrap" DATABASE_URL="$database_url"
  # On a cluster the services create their topics as the cluster replicates its own
  # (deploy/kafka-cluster.sh's defaults); on one broker the services' defaults are 1 and 1.
  if ((${KAFKA_NODES:-1} > 1)); then
    export KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-3}"
    export KAFKA_MIN_INSYNC_REPLICAS="${KAFKA_MIN_INSYNC_REPLICAS:-2}"
  fi
}

# Two reporting workers: IOC screens poll it; each worker has its own exact snapshot cache.
export REPORTING_WORKERS="${REPORTING_WORKERS:-2}"
# The workers' metric files, merged by /metrics into one view (prometheus-client multiprocess
# mode); the reporting service empties the folder when it starts. Only reporting runs several
# processes, so only it gets the variable.
REPORTING_METRICS_DIR="${REPORTING_METRICS_DIR:-$run_dir/metrics/reporting}"
# The aggregator creates the schema and topics, so it starts (and gets ready) first.
services=(aggregator intake reporting)

port_of() {
  case "$1" in
    intake) echo "$INTAKE_PORT" ;;
    reporting) echo "$REPORTING_PORT" ;;
    aggregator) echo "$AGGREGATOR_PORT" ;;
  esac
}

running() {
  local pid_file="$run_dir/$1.pid"
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# Refuses to go on when the aggregator's consumer group has members that are not this stack's
# aggregator (the one running, or the one whose pid is still recorded and whose membership may
# not have expired yet): another stack on the same broker with the same group.
check_consumer_group() {
  local pid_file="$run_dir/aggregator.pid" status=0
  local -a own=()
  [[ -s "$pid_file" ]] && own=(--own-pid "$(cat "$pid_file")")
  "$python" -m services.infra.consumer_groups \
    --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --group "$CONSUMER_GROUP" "${own[@]}" || status=$?
  case "$status" in
    0) return 0 ;;
    1) die "refusing to start the aggregator (see above)" ;;
    *) die "cannot check consumer group $CONSUMER_GROUP at $KAFKA_BOOTSTRAP_SERVERS: is Kafka running (deploy/kafka.sh start)?" ;;
  esac
}

wait_ready() {
  local name="$1" url="http://127.0.0.1:$(port_of "$1")/readyz" deadline=$((SECONDS + ${START_TIMEOUT:-90}))
  until curl -sf -o /dev/null "$url"; do
    if ! running "$name"; then
      echo "services.sh: $name exited; last log lines:" >&2
      tail -n 40 "$run_dir/$name.log" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "services.sh: $name not ready at $url in time; last log lines:" >&2
      tail -n 40 "$run_dir/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "services.sh: $name ready on port $(port_of "$name")"
}

start() {
  derive_addresses
  mkdir -p "$run_dir"
  cd "$repo"
  check_consumer_group
  for name in "${services[@]}"; do
    if running "$name"; then
      echo "services.sh: $name already running (pid $(cat "$run_dir/$name.pid"))"
    else
      local -a env=()
      [[ "$name" == reporting ]] && env=(env "PROMETHEUS_MULTIPROC_DIR=$REPORTING_METRICS_DIR")
      setsid nohup "${env[@]}" "$python" -m "services.$name" >>"$run_dir/$name.log" 2>&1 </dev/null &
      echo $! >"$run_dir/$name.pid"
    fi
    wait_ready "$name"
  done
}

stop() {
  local name pid deadline
  for name in reporting intake aggregator; do
    running "$name" || { rm -f "$run_dir/$name.pid"; continue; }
    pid="$(cat "$run_dir/$name.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"  # the whole session: uvicorn workers too
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid"
    rm -f "$run_dir/$name.pid"
    echo "services.sh: $name stopped"
  done
}

show_env() {
  local name
  derive_addresses
  for name in KAFKA_BOOTSTRAP_SERVERS KAFKA_REPLICATION_FACTOR KAFKA_MIN_INSYNC_REPLICAS DATABASE_URL \
    INTAKE_PORT REPORTING_PORT AGGREGATOR_PORT CONSUMER_GROUP REPORTING_WORKERS REPORTING_METRICS_DIR; do
    printf '%s=%s\n' "$name" "${!name:-}"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) show_env ;;
  *) echo "usage: $0 {start|stop|env}" >&2; exit 2 ;;
esac
