#!/usr/bin/env bash
# The whole local stack: Kafka (from Maven jars), PostgreSQL, the SMTP sink, and the topics.
# Usage: deploy/local/stack.sh up|down|status
# With STACK_RECORD=<file>, `up` notes which parts it started itself and `down` stops only
# those: `make test` leaves alone a stack that `make up` had already started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${STATE_DIR:-$ROOT/.local}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SMTP_PORT="${SMTP_PORT:-2525}"
SMTP_PID="$STATE_DIR/smtp-sink-$SMTP_PORT.pid"
export STATE_DIR

log() { echo "[stack] $*" >&2; }

record() { [[ -n "${STACK_RECORD:-}" ]] && echo "$1" >>"$STACK_RECORD"; return 0; }
recorded() { [[ -z "${STACK_RECORD:-}" ]] || grep -qx "$1" "$STACK_RECORD" 2>/dev/null; }

smtp_up() {
  if [[ -f "$SMTP_PID" ]] && kill -0 "$(cat "$SMTP_PID")" 2>/dev/null; then
    log "SMTP sink already running on 127.0.0.1:$SMTP_PORT"; return
  fi
  mkdir -p "$STATE_DIR/mail"
  cd "$ROOT"
  setsid nohup "$PYTHON" -m devtools.smtp_sink --port "$SMTP_PORT" --dir "$STATE_DIR/mail" \
      </dev/null >>"$STATE_DIR/smtp-sink.log" 2>&1 &
  echo $! >"$SMTP_PID"
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; then
      log "SMTP sink on 127.0.0.1:$SMTP_PORT (mail saved to $STATE_DIR/mail)"; return
    fi
    sleep 0.1
  done
  log "SMTP sink did not start; see $STATE_DIR/smtp-sink.log"; exit 1
}

smtp_down() {
  if [[ -f "$SMTP_PID" ]]; then
    kill "$(cat "$SMTP_PID")" 2>/dev/null || true
    rm -f "$SMTP_PID"
    log "SMTP sink stopped"
  fi
}

case "${1:-}" in
  up)
    mkdir -p "$STATE_DIR"
    "$ROOT/deploy/local/postgres.sh" status >/dev/null 2>&1 || record postgres
    "$ROOT/deploy/local/postgres.sh" start
    "$ROOT/deploy/local/kafka.sh" status >/dev/null 2>&1 || record kafka
    "$ROOT/deploy/local/kafka.sh" start
    { [[ -f "$SMTP_PID" ]] && kill -0 "$(cat "$SMTP_PID")" 2>/dev/null; } || record smtp
    smtp_up
    (cd "$ROOT" && "$PYTHON" -m shared.topics)
    log "stack is up: Kafka 127.0.0.1:${KAFKA_PORT:-9092}, PostgreSQL $("$ROOT/deploy/local/postgres.sh" url), SMTP 127.0.0.1:$SMTP_PORT"
    ;;
  down)
    recorded smtp && smtp_down
    recorded kafka && { "$ROOT/deploy/local/kafka.sh" stop || true; }
    recorded postgres && { "$ROOT/deploy/local/postgres.sh" stop || true; }
    if [[ -n "${STACK_RECORD:-}" ]]; then rm -f "$STACK_RECORD"; fi
    log "stopped what was started$( [[ -n "${STACK_RECORD:-}" ]] && echo " by this run")"
    ;;
  status)
    "$ROOT/deploy/local/kafka.sh" status && echo "kafka: up" || echo "kafka: down"
    "$ROOT/deploy/local/postgres.sh" status | sed 's/^/postgres: /' || true
    if [[ -f "$SMTP_PID" ]] && kill -0 "$(cat "$SMTP_PID")" 2>/dev/null; then echo "smtp: up"; else echo "smtp: down"; fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
