#!/usr/bin/env bash
# Create .venv and install embedlab with the CPU build of PyTorch (never a CUDA one).
# Usage: scripts/setup.sh [extra]    e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python3 -m venv .venv
target="."
[ -n "$extra" ] && target=".[${extra}]"
# torch first and pinned: a bare "torch" requirement would pull a multi-GB CUDA build.
.venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0 -e "$target" 2>&1 | grep -v "is ignored: it is neither" || true
