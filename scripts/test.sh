#!/usr/bin/env bash
# Set up everything on a fresh machine, then run the quality gates and all tests: the Rust core's, the
# Python package's, and an install + smoke test on Python 3.10 (the oldest Python we declare).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --test
# shellcheck disable=SC1091
. .venv/bin/activate

bash scripts/lint.sh
cargo test -p embedforge --release
cargo test -p embedforge-serve --release
python -m pytest -q
bash scripts/smoke_py310.sh
