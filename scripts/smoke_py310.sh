#!/usr/bin/env bash
# Install the package into a fresh Python 3.10 venv (.venv-py310, git-ignored) and run scripts/smoke_test.py there.
# Usage: bash scripts/smoke_py310.sh   (PYTHON310=/path/to/python3.10 to skip the pyenv lookup)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

python310="${PYTHON310:-}"
if [ -z "$python310" ]; then
  # The newest 3.10.x that pyenv has; 3.10 is the oldest Python the package supports (requires-python).
  python310="$(find "$(pyenv root)/versions" -maxdepth 3 -path '*/versions/3.10.*/bin/python' | sort -V | tail -n 1)"
fi
if [ -z "$python310" ] || [ ! -x "$python310" ]; then
  echo "No Python 3.10 found: install one with pyenv or set PYTHON310" >&2
  exit 1
fi

start=$SECONDS
rm -rf .venv-py310
"$python310" -m venv .venv-py310
venv_python="$repo/.venv-py310/bin/python"
"$venv_python" -m pip install --quiet --upgrade pip
"$venv_python" -m pip install --quiet "maturin>=1.9.4,<2"
# A regular (non-editable) install, so the smoke test imports the built wheel, not the source tree.
# The train extra brings datasets and accelerate for the two training steps.
"$venv_python" -m pip install --quiet ".[train]"
echo "installed in $((SECONDS - start)) s"

# From outside the repository, so that nothing on sys.path can shadow the installed package.
(cd "${TMPDIR:-/tmp}" && "$venv_python" "$repo/scripts/smoke_test.py")
echo "smoke_py310: passed in $((SECONDS - start)) s"
