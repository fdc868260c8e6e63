#!/usr/bin/env bash
# Debian's prometheus package for `promtool`, which tests/unit/test_monitoring.py runs to check
# and unit-test deploy/monitoring/alerts.yaml. Skipped quietly when already installed.
set -euo pipefail
if command -v promtool >/dev/null; then exit 0; fi
if [[ "$(id -u)" != 0 ]]; then
  echo "[promtool] promtool missing: run 'sudo apt-get install prometheus' (or make promtool as root)" >&2
  exit 1
fi
echo "[promtool] installing Debian's prometheus package for promtool (first run only)..." >&2
export DEBIAN_FRONTEND=noninteractive
# the package's own services are not wanted here: only the promtool binary is used
if ! apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "[promtool] $(promtool --version 2>&1 | head -1)" >&2
