"""Check an installed embedforge wheel's native module on a platform where torch has no wheels.

``scripts/smoke_test.py`` needs torch, which PyPI does not ship for musllinux or for macOS on
x86_64; there the wheels are checked by loading ``embedforge._core`` straight from the installed
files (the package's ``__init__`` imports torch) and comparing its exact top-k search with numpy.
Run from outside the repository after ``pip install --no-deps <wheel> numpy``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np


def load_core() -> ModuleType:
    """Import the extension module from the installed distribution without its parent package."""
    files = importlib.metadata.files("embedforge") or []
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    native = [
        f for f in files if f.parent.name == "embedforge" and f.name.startswith("_core") and f.name.endswith(suffixes)
    ]
    if len(native) != 1:
        raise SystemExit(f"check_native: expected one embedforge/_core extension in the wheel, found {native}")
    path = Path(str(native[0].locate()))
    spec = importlib.util.spec_from_file_location("embedforge._core", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"check_native: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(f"loaded {path}")
    return module


def main() -> None:
    """Load the module, then compare one cosine top-k search with the same search in numpy."""
    core = load_core()
    version = importlib.metadata.version("embedforge")
    if core.__version__ != version:
        raise SystemExit(f"check_native: _core says {core.__version__}, the wheel says {version}")

    rng = np.random.default_rng(0)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    corpus = rng.standard_normal((50, 8)).astype(np.float32)
    indices, scores = core.top_k(queries, corpus, 5, "cosine")

    unit_q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    unit_c = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    similarity = unit_q @ unit_c.T
    expected = np.argsort(-similarity, axis=1, kind="stable")[:, :5]
    if not np.array_equal(indices, expected):
        raise SystemExit(f"check_native: top_k gave {indices.tolist()}, numpy {expected.tolist()}")
    if not np.allclose(scores, np.take_along_axis(similarity, expected, axis=1), atol=1e-5):
        raise SystemExit("check_native: top_k's scores differ from numpy's cosine similarities")
    print(f"embedforge {version} native module on Python {sys.version.split()[0]}: top_k agrees with numpy")


if __name__ == "__main__":
    main()
