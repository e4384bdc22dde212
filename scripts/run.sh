#!/usr/bin/env bash
# Install embedlab and run the main job: serve the default model, offline, on http://127.0.0.1:8000
# (OpenAI-compatible /v1/embeddings, dashboard at /). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh serve
exec .venv/bin/embedlab serve "$@"
