#!/usr/bin/env bash
# Set up everything on a fresh machine, then run all tests: the Rust core's and the Python package's.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --test
# shellcheck disable=SC1091
. .venv/bin/activate

cargo test -p embedforge --release
python -m pytest -q
