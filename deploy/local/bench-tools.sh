#!/usr/bin/env bash
# The native tools `make bench` measures with: Debian's wrk (the HTTP load generator) and
# Postfix's smtp-sink (the SMTP server the invitation mails go to). Postfix is installed for
# that one program: its mail daemon is not started, and is stopped if the package started it.
# Skipped quietly when both are installed.
set -euo pipefail
if [[ -x /usr/bin/wrk && -x /usr/sbin/smtp-sink ]]; then exit 0; fi
if [[ "$(id -u)" != 0 ]]; then
  echo "[bench] wrk or smtp-sink missing: run 'sudo apt-get install wrk postfix' (or make bench-tools as root)" >&2
  exit 1
fi
echo "[bench] installing Debian's wrk and postfix (for smtp-sink; first run only)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# no local mail system is configured: the package's questions get their "No configuration" answer
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get install -y -qq --no-install-recommends wrk postfix >/dev/null
if command -v postfix >/dev/null && postfix status >/dev/null 2>&1; then
  postfix stop >/dev/null 2>&1 || true
fi
echo "[bench] $(wrk --version 2>&1 | head -1); smtp-sink at /usr/sbin/smtp-sink" >&2
