#!/usr/bin/env bash
# Install a built wheel, with the `train` extra, into fresh Python 3.10 and 3.13 venvs while no Rust
# toolchain is on PATH, and run scripts/smoke_test.py in each from outside the repository: proof that
# the wheel installs and works as a user gets it, without pip quietly compiling the sdist instead.
# Usage: bash scripts/check_wheel.sh [WHEEL]
#   WHEEL defaults to the one Linux x86_64 wheel in dist/ (bash scripts/build_wheels.sh makes it).
#   CHECK_PYTHONS="3.10 3.13" picks the pyenv versions (newest patch release of each);
#   KEEP_VENVS=1 keeps the venvs (their folder is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

wheel="${1:-}"
if [ -z "$wheel" ]; then
  shopt -s nullglob
  wheels=(dist/embedforge-*-manylinux*_x86_64.whl)
  shopt -u nullglob
  if [ "${#wheels[@]}" -ne 1 ]; then
    echo "check_wheel: expected one manylinux x86_64 wheel in dist/, found ${#wheels[@]}; pass WHEEL" >&2
    exit 1
  fi
  wheel="${wheels[0]}"
fi
wheel="$(realpath "$wheel")"

# PATH minus every folder that holds cargo or rustc (~/.cargo/bin, rustup shims, a distro toolchain).
no_rust_path=""
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  if [ -z "$dir" ] || [ -e "$dir/cargo" ] || [ -e "$dir/rustc" ]; then
    continue
  fi
  no_rust_path="${no_rust_path:+$no_rust_path:}$dir"
done
for tool in cargo rustc; do
  if env PATH="$no_rust_path" bash -c "command -v $tool" >/dev/null 2>&1; then
    echo "check_wheel: $tool is still on the reduced PATH" >&2
    exit 1
  fi
done
echo "no Rust toolchain on the install PATH (cargo, rustc: not found)"
# The rest of the environment must not point at a toolchain either.
run() { env -u CARGO_HOME -u RUSTUP_HOME -u CARGO PATH="$no_rust_path" "$@"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/embedforge-check-wheel.XXXXXX")"
if [ "${KEEP_VENVS:-0}" = 1 ]; then
  echo "venvs kept in $work"
else
  trap 'rm -rf "$work"' EXIT
fi

echo "wheel: $(basename "$wheel")"
summary=()
for version in ${CHECK_PYTHONS:-3.10 3.13}; do
  python="$(find "$(pyenv root)/versions" -maxdepth 3 -path "*/versions/${version}.*/bin/python" | sort -V | tail -n 1)"
  if [ -z "$python" ]; then
    echo "check_wheel: pyenv has no Python $version" >&2
    exit 1
  fi
  echo
  echo "== Python $version ($python)"
  venv="$work/py$version"
  venv_python="$venv/bin/python"
  start=$SECONDS
  "$python" -m venv "$venv"
  run "$venv_python" -m pip install --quiet --upgrade pip
  # A direct reference to the file plus --only-binary: pip may not swap in an sdist for embedforge.
  run "$venv_python" -m pip install --quiet --only-binary embedforge "embedforge[train] @ file://$wheel"
  install_s=$((SECONDS - start))

  run "$venv_python" - "$venv" <<'EOF'
import importlib.metadata as metadata
import os
import sys

import embedforge._core

venv = os.path.realpath(sys.argv[1])
native = os.path.realpath(embedforge._core.__file__)
if not native.startswith(venv + os.sep):
    raise SystemExit(f"check_wheel: embedforge._core came from {native}, not from the venv {venv}")
versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("embedforge", "torch", "transformers", "numpy"))
print(f"installed: {versions}; native module {os.path.basename(native)}")
EOF

  smoke_start=$SECONDS
  # From an empty folder outside the repository, so nothing on sys.path can shadow the installed package.
  (cd "$work" && run "$venv_python" "$repo/scripts/smoke_test.py")
  smoke_s=$((SECONDS - smoke_start))
  summary+=("Python $("$venv_python" -c 'import platform; print(platform.python_version())'): install ${install_s} s, smoke test ${smoke_s} s: passed")
done

echo
echo "check_wheel: $(basename "$wheel")"
printf '  %s\n' "${summary[@]}"
