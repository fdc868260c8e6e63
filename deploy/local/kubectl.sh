#!/usr/bin/env bash
# What renders the Kubernetes manifests in tests: kubectl (its `kustomize` subcommand) when the
# machine has it; otherwise kustomize itself, built from the Go module proxy into .local/bin.
# (Debian's own kubernetes-client is 1.20, whose bundled kustomize predates the features the
# overlays use.) Quiet when there is nothing to do.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if command -v kubectl >/dev/null 2>&1 || [[ -x "$ROOT/.local/bin/kustomize" ]]; then exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "[kustomize] neither kubectl nor go is installed: install kubectl to render deploy/k8s" >&2
  exit 1
fi
echo "[kustomize] building kustomize v5.5.0 into .local/bin (first run only)..." >&2
mkdir -p "$ROOT/.local/bin"
GOBIN="$ROOT/.local/bin" GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
