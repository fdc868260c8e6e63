#!/usr/bin/env bash
# Local PostgreSQL for development and tests.
# - DATABASE_URL set and reachable: use it, start nothing.
# - otherwise: install Debian's postgresql package when missing (needs root), start a cluster
#   owned by this project under $STATE_DIR/postgres on 127.0.0.1:$PG_PORT, create role and database.
# Usage: deploy/local/postgres.sh start|stop|status|url
# Env: PG_PORT (5432; data in $STATE_DIR/postgres-$PG_PORT), PG_STOP_MODE for stop: fast (default:
#      roll back, disconnect, checkpoint) or immediate (no checkpoint: crash recovery on next start).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${STATE_DIR:-$ROOT/.local}"
PG_PORT="${PG_PORT:-5432}"
PG_DATA="$STATE_DIR/postgres-$PG_PORT"
PG_USER="${PG_USER:-ratings}"
PG_PASSWORD="${PG_PASSWORD:-ratings}"
PG_DB="${PG_DB:-ratings}"
PG_STOP_MODE="${PG_STOP_MODE:-fast}"
LOCAL_URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"

log() { echo "[postgres] $*" >&2; }

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

reachable() { # $1 = URL
  command -v psql >/dev/null 2>&1 || return 1
  PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

run_as_postgres() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_postgres() {
  if [[ -n "$(pg_bin)" ]]; then return; fi
  if [[ "$(id -u)" != 0 ]]; then
    log "PostgreSQL server binaries not found and not root: install Debian's 'postgresql' package or set DATABASE_URL"
    exit 1
  fi
  log "installing Debian's postgresql package (first run only)..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  # Debian starts its own cluster on 5432 on install; ours is separate, so stop theirs.
  if command -v pg_ctlcluster >/dev/null; then
    for cluster in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do
      pg_ctlcluster "${cluster%/*}" "${cluster#*/}" stop >/dev/null 2>&1 || true
    done
  fi
}

start() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    if reachable "$DATABASE_URL"; then log "using DATABASE_URL (reachable)"; return; fi
    log "DATABASE_URL is set but not reachable; starting a local server instead"
  fi
  if reachable "$LOCAL_URL"; then log "already running on 127.0.0.1:$PG_PORT"; return; fi
  install_postgres
  local bin; bin="$(pg_bin)"
  mkdir -p "$STATE_DIR"
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initialising a cluster in $PG_DATA"
    mkdir -p "$PG_DATA"
    [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
    run_as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DATA'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  run_as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start >/dev/null
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atq <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB;
  END IF;
END \$\$;
SQL
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "select 1 from pg_database where datname='$PG_DB'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "create database $PG_DB owner $PG_USER" >/dev/null
  fi
  reachable "$LOCAL_URL" || { log "started but $LOCAL_URL is not reachable"; tail -20 "$PG_DATA/server.log" >&2; exit 1; }
  log "ready: $LOCAL_URL"
}

stop() {
  local bin; bin="$(pg_bin || true)"
  case "$PG_STOP_MODE" in
    fast | immediate) ;;
    *) log "PG_STOP_MODE must be fast or immediate, got '$PG_STOP_MODE'"; exit 2 ;;
  esac
  if [[ -n "$bin" && -f "$PG_DATA/postmaster.pid" ]]; then
    log "stopping PostgreSQL ($PG_DATA, mode $PG_STOP_MODE)"
    run_as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m "$PG_STOP_MODE" -w -t 60 stop >/dev/null || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) reachable "${DATABASE_URL:-$LOCAL_URL}" && echo "up" || { echo "down"; exit 1; } ;;
  url) if [[ -n "${DATABASE_URL:-}" ]] && reachable "$DATABASE_URL"; then echo "$DATABASE_URL"; else echo "$LOCAL_URL"; fi ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
