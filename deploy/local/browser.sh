#!/usr/bin/env bash
# Debian's Chromium for the survey page's browser test (Playwright drives it; it never downloads
# a browser of its own). Skipped quietly when already installed.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
if [[ "$(id -u)" != 0 ]]; then
  echo "[browser] /usr/bin/chromium missing: run 'sudo apt-get install chromium' (or make browser as root)" >&2
  exit 1
fi
echo "[browser] installing Debian's chromium (first run only)..." >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "[browser] $(/usr/bin/chromium --version 2>/dev/null)" >&2
