#!/usr/bin/env bash
# Local Prometheus (Debian's package) scraping the three services on this machine, with the alert
# rules of deploy/prometheus/alerts.yml. No Docker; everything it writes stays in PROMETHEUS_HOME.
#
# Usage: deploy/prometheus.sh {install|config|start|stop|status|url}
#   install  installs Debian's prometheus package when promtool/prometheus are missing (as root)
#   config   prints the configuration that start writes (scrape targets from the ports below)
#   start    writes the configuration, starts Prometheus detached, waits until it is ready
#
# Environment (all optional):
#   PROMETHEUS_PORT            listen port on 127.0.0.1          (default 9090)
#   PROMETHEUS_HOME            config, data, log, pid            (default <repo>/.local/prometheus)
#   INTAKE_PORT, AGGREGATOR_PORT, REPORTING_PORT  the services   (default 8001, 8003, 8002)
#   PROMETHEUS_SCRAPE_INTERVAL scrape and rule interval          (default 15s; tests use 1s)
#   PROMETHEUS_START_TIMEOUT   seconds to wait for readiness     (default 60)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_HOME="${PROMETHEUS_HOME:-$REPO_ROOT/.local/prometheus}"
INTAKE_PORT="${INTAKE_PORT:-8001}"
AGGREGATOR_PORT="${AGGREGATOR_PORT:-8003}"
REPORTING_PORT="${REPORTING_PORT:-8002}"
SCRAPE_INTERVAL="${PROMETHEUS_SCRAPE_INTERVAL:-15s}"
START_TIMEOUT="${PROMETHEUS_START_TIMEOUT:-60}"
RULES="$SCRIPT_DIR/prometheus/alerts.yml"
PID_FILE="$PROMETHEUS_HOME/prometheus.pid"
LOG_FILE="$PROMETHEUS_HOME/prometheus.log"

log() { printf 'prometheus.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    return 0
  fi
  [[ "$(id -u)" -eq 0 ]] || die "prometheus is missing; install Debian's package as root: apt-get install prometheus"
  log "installing Debian's prometheus package"
  apt-get update -qq
  # The package's own service (on 9090) is not wanted: policy-rc.d keeps it from starting.
  local policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  ((created)) && rm -f "$policy"
  command -v prometheus >/dev/null && command -v promtool >/dev/null || die "prometheus still missing after apt-get"
}

config() {
  cat <<YAML
# Written by deploy/prometheus.sh: the services on this machine's ports.
global:
  scrape_interval: $SCRAPE_INTERVAL
  evaluation_interval: $SCRAPE_INTERVAL
rule_files: ["$RULES"]
scrape_configs:
  - job_name: tthc-intake
    static_configs: [{targets: ["127.0.0.1:$INTAKE_PORT"]}]
  - job_name: tthc-aggregator
    static_configs: [{targets: ["127.0.0.1:$AGGREGATOR_PORT"]}]
  - job_name: tthc-reporting
    static_configs: [{targets: ["127.0.0.1:$REPORTING_PORT"]}]
YAML
}

running() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

url() { printf 'http://127.0.0.1:%s\n' "$PROMETHEUS_PORT"; }

start() {
  install
  mkdir -p "$PROMETHEUS_HOME/data"
  config >"$PROMETHEUS_HOME/prometheus.yml"
  promtool check config "$PROMETHEUS_HOME/prometheus.yml" >/dev/null || die "invalid configuration"
  if running; then
    log "already running (pid $(cat "$PID_FILE")), reloading the configuration"
    kill -HUP "$(cat "$PID_FILE")"
    return 0
  fi
  setsid nohup prometheus \
    --config.file="$PROMETHEUS_HOME/prometheus.yml" \
    --storage.tsdb.path="$PROMETHEUS_HOME/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.console.libraries=/usr/share/prometheus/console_libraries \
    --web.console.templates=/usr/share/prometheus/consoles \
    >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until curl -sf -o /dev/null "$(url)/-/ready"; do
    if ! running; then
      tail -n 30 "$LOG_FILE" >&2
      die "prometheus exited"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$LOG_FILE" >&2; die "not ready in ${START_TIMEOUT}s"; }
    sleep 0.2
  done
  log "ready on $(url)"
}

stop() {
  running || { rm -f "$PID_FILE"; return 0; }
  local pid deadline
  pid="$(cat "$PID_FILE")"
  kill -TERM "$pid"
  deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PID_FILE"
  log "stopped"
}

case "${1:-}" in
  install) install ;;
  config) config ;;
  start) start ;;
  stop) stop ;;
  status) running ;;
  url) url ;;
  *) echo "usage: $0 {install|config|start|stop|status|url}" >&2; exit 2 ;;
esac
