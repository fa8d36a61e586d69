#!/usr/bin/env bash
# Local PostgreSQL server for development, tests and CI, without Docker and
# without touching the distribution's own cluster: its own data directory,
# its own port (5433 by default, since a system cluster may own 5432) and a
# Unix socket inside PG_HOME.
#
# Usage: deploy/postgres.sh {start|stop|status|url}
#
# Environment (all optional):
#   PG_PORT       TCP port on 127.0.0.1                 (default 5433)
#   PG_HOME       data dir, socket dir, log             (default <repo>/.local/postgres)
#   PG_BIN        folder with initdb/pg_ctl/postgres    (default: highest /usr/lib/postgresql/*/bin)
#   DATABASE_URL  use that server instead: start only waits until it answers,
#                 stop does nothing, url prints it
#
# Database "tthc", role "tthc" with password "tthc" (LOGIN, CREATEDB so tests
# can create throw-away databases). TCP connections need the password
# (scram-sha-256); the Unix socket in PG_HOME/run trusts local users, which
# is what this script uses for administration.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

PG_PORT="${PG_PORT:-5433}"
if [[ -n "${PG_HOME:-}" ]]; then
  PG_HOME_EXPLICIT=1
else
  PG_HOME_EXPLICIT=0
  PG_HOME="$REPO_ROOT/.local/postgres"
  # As root the server runs as user 'postgres', which must be able to reach
  # PG_HOME. A clone inside a private folder (e.g. under /root, mode 700)
  # does not allow that, so fall back to a per-clone folder in /var/tmp
  # rather than fail (CI may clone anywhere).
  if [[ "$(id -u)" -eq 0 ]] && id postgres >/dev/null 2>&1 \
      && ! runuser -u postgres -- test -x "$REPO_ROOT" 2>/dev/null; then
    PG_HOME="/var/tmp/tthc-pulse-postgres-$(printf '%s' "$REPO_ROOT" | cksum | cut -d' ' -f1)"
  fi
fi
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
DB_NAME=tthc
DB_USER=tthc
DB_PASSWORD=tthc
# initdb's superuser; fixed so the script behaves the same as root or not.
SUPERUSER=postgres

PGDATA_DIR="$PG_HOME/data"
SOCKET_DIR="$PG_HOME/run"
LOG_FILE="$PG_HOME/postgres.log"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# PostgreSQL refuses to run as root, so as root every server-side command
# runs as the unprivileged "postgres" system user.
as_pg() {
  if is_root; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

find_pg_bin() {
  local dir
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/pg_ctl" ]] || die "PG_BIN=$PG_BIN has no pg_ctl"
    printf '%s\n' "$PG_BIN"
    return 0
  fi
  dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1 || true)"
  if [[ -n "$dir" && -x "$dir/pg_ctl" ]]; then
    printf '%s\n' "$dir"
    return 0
  fi
  return 1
}

ensure_pg_bin() {
  if PG_BIN="$(find_pg_bin)"; then
    return 0
  fi
  is_root || die "PostgreSQL server binaries not found under /usr/lib/postgresql; install the 'postgresql' package (or set PG_BIN)"
  log "PostgreSQL not installed; installing the Debian 'postgresql' package"
  # Debian's package may create and start its own 'main' cluster on 5432; we
  # leave it alone and use our own data dir and port.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  PG_BIN="$(find_pg_bin)" || die "postgresql installed but no /usr/lib/postgresql/*/bin/pg_ctl found"
}

ensure_pg_user() {
  is_root || return 0
  id postgres >/dev/null 2>&1 && return 0
  log "creating system user 'postgres'"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

# Psql binary for client-side checks: the server's own, else the one on PATH.
client_bin() {
  local name="$1"
  if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/$name" ]]; then
    printf '%s\n' "$PG_BIN/$name"
  elif command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
  else
    PG_BIN="$(find_pg_bin)" || return 1
    [[ -x "$PG_BIN/$name" ]] || return 1
    printf '%s\n' "$PG_BIN/$name"
  fi
}

print_log_tail() {
  log "---- last lines of $LOG_FILE ----"
  tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
}

# True if our own postmaster (for PGDATA_DIR) is running.
server_running() {
  [[ -f "$PGDATA_DIR/postmaster.pid" ]] || return 1
  as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

# Cheaper than pg_ctl status (no runuser), used in the start-up poll.
postmaster_alive() {
  local pid
  pid="$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

ready_local() {
  "$PG_BIN/pg_isready" -q -h "$SOCKET_DIR" -p "$PG_PORT" -U "$SUPERUSER" -d postgres >/dev/null 2>&1
}

# Connection string to the server over TCP, as the services will use it.
local_url() {
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' "$DB_USER" "$DB_PASSWORD" "$PG_PORT" "$DB_NAME"
}

# DATABASE_URL points at a server we do not manage: just wait for it.
wait_external() {
  local isready deadline host port rest
  deadline=$((SECONDS + PG_START_TIMEOUT))
  isready="$(client_bin pg_isready || true)"
  if [[ -z "$isready" ]]; then
    # No client tools: fall back to a TCP probe of host:port from the URL.
    rest="${DATABASE_URL#*://}"
    rest="${rest#*@}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    host="${rest%%:*}"
    port=5432
    [[ "$rest" == *:* ]] && port="${rest##*:}"
  fi
  while ((SECONDS < deadline)); do
    if [[ -n "$isready" ]]; then
      "$isready" -q -d "$DATABASE_URL" >/dev/null 2>&1 && return 0
    else
      # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash
      timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" >/dev/null 2>&1 && return 0
    fi
    sleep 0.3
  done
  die "DATABASE_URL server did not answer within ${PG_START_TIMEOUT}s"
}

# Settings we own; rewritten on every start so that PG_PORT/PG_HOME changes
# take effect. postgresql.conf only includes this file.
write_conf() {
  local conf="$PGDATA_DIR/tthc.conf"
  as_pg tee "$conf" >/dev/null <<EOF
# Generated by deploy/postgres.sh on every start: edit the script instead.
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '${SOCKET_DIR}'
max_connections = 200
# The aggregator's tables (states, identities, level changes) are written all over on every
# batch: keep them in memory, and checkpoint rarely so that fewer full pages go to the WAL.
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = lz4
# Durability stays as in production: the tests check crash/replay behaviour.
fsync = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

init_cluster() {
  local pwfile
  if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
    return 0
  fi
  log "initdb $PGDATA_DIR"
  # initdb refuses a non-empty directory; a half-done earlier attempt leaves
  # one, and there is nothing in it worth keeping.
  rm -rf "$PGDATA_DIR"
  as_pg mkdir -m 700 "$PGDATA_DIR"
  pwfile="$PG_HOME/.initdb-pw"
  as_pg tee "$pwfile" >/dev/null <<<"$SUPERUSER"
  # Local socket: trust (only reachable through PG_HOME/run, admin use).
  # TCP on 127.0.0.1: password, as the services connect with a URL.
  if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U "$SUPERUSER" --pwfile="$pwfile" \
      -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
      >"$PG_HOME/initdb.log" 2>&1; then
    rm -f "$pwfile"
    tail -n 30 "$PG_HOME/initdb.log" >&2 || true
    die "initdb failed"
  fi
  rm -f "$pwfile"
  as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<<"include = 'tthc.conf'"
}

# Role and database for the services; idempotent, and re-asserts the
# password/attributes in case someone changed them by hand.
ensure_role_and_db() {
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PG_PORT" -U "$SUPERUSER")
  "${psql[@]}" -d postgres >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DB_USER}') THEN
    CREATE ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
  ELSE
    ALTER ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE ${DB_NAME} OWNER ${DB_USER} ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DB_NAME}')
\gexec
SQL
}

cmd_start() {
  local t0 t_launch deadline
  t0=$SECONDS
  if [[ -n "${DATABASE_URL:-}" ]]; then
    log "DATABASE_URL is set: not managing a server, waiting for it to answer"
    wait_external
    log "external server answers"
    return 0
  fi
  ensure_pg_bin
  ensure_pg_user
  mkdir -p "$PG_HOME"
  if is_root; then
    chown postgres: "$PG_HOME"
    # The postgres user must be able to reach PG_HOME through every parent
    # folder; a clone under /root (mode 700) would not allow it.
    [[ "$PG_HOME" == "$REPO_ROOT/.local/postgres" ]] \
      || ((PG_HOME_EXPLICIT)) || log "note: user 'postgres' cannot reach $REPO_ROOT; using PG_HOME=$PG_HOME"
    runuser -u postgres -- test -w "$PG_HOME" \
      || die "user 'postgres' cannot write $PG_HOME (a parent folder is not searchable?); set PG_HOME to a path it can reach, e.g. /var/tmp/tthc-postgres"
  fi
  # Unix socket paths are limited to 107 bytes.
  ((${#SOCKET_DIR} + 20 < 107)) || die "socket dir path too long ($SOCKET_DIR); use a shorter PG_HOME"
  as_pg mkdir -p "$SOCKET_DIR"
  # Serialise concurrent starts on the same PG_HOME.
  exec 9>"$PG_HOME/.lock"
  flock 9

  init_cluster
  write_conf

  if server_running; then
    log "already running ($PGDATA_DIR)"
  else
    log "starting on 127.0.0.1:$PG_PORT ($PGDATA_DIR)"
    # -W: we poll ourselves, so a failure shows the log instead of hanging.
    # 9>&-: the postmaster must not inherit (and hold) our lock.
    if ! as_pg "$PG_BIN/pg_ctl" start -W -D "$PGDATA_DIR" -l "$LOG_FILE" >/dev/null 9>&-; then
      print_log_tail
      die "pg_ctl start failed"
    fi
  fi

  deadline=$((SECONDS + PG_START_TIMEOUT))
  t_launch=$SECONDS
  until ready_local; do
    if ((SECONDS >= deadline)); then
      print_log_tail
      die "server not ready within ${PG_START_TIMEOUT}s"
    fi
    # A postmaster that fails (bad config, port in use, ...) exits and
    # removes its pid file: stop waiting and show why, after a short grace
    # period for it to write the pid file in the first place.
    if ! postmaster_alive && ((SECONDS - t_launch >= 3)); then
      print_log_tail
      die "postmaster exited during start-up"
    fi
    sleep 0.2
  done

  if ! ensure_role_and_db; then
    print_log_tail
    die "could not create role/database $DB_USER/$DB_NAME"
  fi
  log "ready: $(local_url) (after $((SECONDS - t0))s)"
}

cmd_stop() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    log "DATABASE_URL is set: nothing to stop"
    return 0
  fi
  if ! PG_BIN="$(find_pg_bin)"; then
    log "not running (no PostgreSQL binaries)"
    return 0
  fi
  if ! server_running; then
    log "not running"
    return 0
  fi
  log "stopping ($PGDATA_DIR)"
  if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -t 60 >/dev/null; then
    print_log_tail
    die "pg_ctl stop failed"
  fi
  log "stopped"
}

cmd_status() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    local isready
    isready="$(client_bin pg_isready)" || die "pg_isready not found"
    "$isready" -q -d "$DATABASE_URL"
    return
  fi
  if PG_BIN="$(find_pg_bin)" && server_running && ready_local; then
    log "running on 127.0.0.1:$PG_PORT ($PGDATA_DIR)"
    return 0
  fi
  log "not running"
  return 1
}

cmd_url() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    printf '%s\n' "$DATABASE_URL"
  else
    local_url
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) cmd_url ;;
  *)
    echo "usage: $0 {start|stop|status|url}" >&2
    exit 2
    ;;
esac
