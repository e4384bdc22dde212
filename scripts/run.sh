#!/usr/bin/env bash
# Install embedlab and run the main job on the default model, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/embedlab embed --input examples/texts.txt --output examples/vectors.npy --overwrite
