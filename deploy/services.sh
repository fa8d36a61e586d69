#!/usr/bin/env bash
# Starts or stops the three tthc-pulse services as background processes of this machine.
#   deploy/services.sh start   # returns once every service answers /readyz
#   deploy/services.sh stop
# Logs and pid files live in .local/run/. Settings come from the environment (see README).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="$repo/.local/run"
python="${PYTHON:-$repo/.venv/bin/python}"
export DATABASE_URL="${DATABASE_URL:-$("$repo/deploy/postgres.sh" url)}"
intake_port="${INTAKE_PORT:-8001}"
reporting_port="${REPORTING_PORT:-8002}"
aggregator_port="${AGGREGATOR_PORT:-8003}"
# Two reporting workers: IOC screens poll it; each worker has its own exact snapshot cache.
export REPORTING_WORKERS="${REPORTING_WORKERS:-2}"
# The aggregator creates the schema and topics, so it starts (and gets ready) first.
services=(aggregator intake reporting)

port_of() {
  case "$1" in
    intake) echo "$intake_port" ;;
    reporting) echo "$reporting_port" ;;
    aggregator) echo "$aggregator_port" ;;
  esac
}

running() {
  local pid_file="$run_dir/$1.pid"
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
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
  mkdir -p "$run_dir"
  cd "$repo"
  for name in "${services[@]}"; do
    if running "$name"; then
      echo "services.sh: $name already running (pid $(cat "$run_dir/$name.pid"))"
    else
      setsid nohup "$python" -m "services.$name" >>"$run_dir/$name.log" 2>&1 </dev/null &
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

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 {start|stop}" >&2; exit 2 ;;
esac
