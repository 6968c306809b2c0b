#!/usr/bin/env bash
# Set up embedforge and run the main job: `embedforge train`. With no arguments it trains a small static
# embedding model on a built-in, generated demo set and prints retrieval scores before and after training;
# pass a config file (or flags) to train on your own data: bash scripts/train.sh my-config.yaml
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
embedforge train "$@"
