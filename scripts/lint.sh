#!/usr/bin/env bash
# Quality gates: ruff (lint + format), mypy (config in pyproject.toml), cargo fmt and clippy; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi

ruff check python tests benches examples
ruff format --check python tests benches examples
mypy
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
