"""Every module path of sentence-transformers 6.2 imports under ``embedforge``, with its public names.

The reference is the installed sentence-transformers package (the test oracle): its module tree and its
table of deprecated paths. Out of scope here: sparse and multi-vector encoders, the ONNX/OpenVINO backends
and model merging. Paths of capabilities that other issues build are listed in PENDING with the issue;
the test fails when one of them starts to import, so the list cannot go stale.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import warnings

import pytest

# In CI a missing oracle fails instead of skipping (tests/conftest.py).
reference = pytest.importorskip("sentence_transformers")

OUT_OF_SCOPE = ("sparse_encoder", "multi_vector_encoder", "backend", "base.merging")
#: Public names of out-of-scope parts (the encoders and backends above) that the package root re-exports.
OUT_OF_SCOPE_NAMES = ("SparseEncoder", "MultiVectorEncoder", "export_")

#: Paths not built yet, each with the issue that builds it.
PENDING = {
    "base.peft_mixin": "conformance issue (PEFT adapters)",
    "peft_mixin": "conformance issue (PEFT adapters)",
    "sentence_transformer.modules.clip_model": "conformance issue (multimodal inputs)",
    "models.CLIPModel": "conformance issue (multimodal inputs)",
    "sentence_transformer.deprecated_model_card_templates": "conformance issue",
    "cross_encoder.util": "CrossEncoder training issue",
}
#: Public names (``__all__`` entries) not built yet, per module, with the issue that builds them.
PENDING_NAMES = {
    "base": {"PeftAdapterMixin"},
    "base.losses": {"CachedLossMixin"},
    "models": {"CLIPModel"},
    "sentence_transformer.modules": {"CLIPModel"},
    # the conformance issue's util helpers: dataset ids, decorators, maxsim, padded token embeddings, ...
    "util": {
        "ORIGINAL_TRANSFORMER_MODELS",
        "check_teacher_targets",
        "information_retrieval",
    },
}


def in_scope(relative: str) -> bool:
    return not any(relative == part or relative.startswith(part + ".") for part in OUT_OF_SCOPE)


def pending_reason(relative: str) -> str | None:
    for path, reason in PENDING.items():
        if relative == path or relative.startswith(path + "."):
            return reason
    return None


def reference_paths() -> list[str]:
    """Module paths of the reference, relative to its package, plus its deprecated paths."""
    from sentence_transformers.util.deprecated_import import DEPRECATED_MODULE_PATHS

    paths = {""}
    for info in pkgutil.walk_packages(reference.__path__, prefix="sentence_transformers."):
        paths.add(info.name.removeprefix("sentence_transformers."))
    paths.update(path.removeprefix("sentence_transformers.") for path in DEPRECATED_MODULE_PATHS)
    return sorted(path for path in paths if in_scope(path))


PATHS = reference_paths()


def embedforge_path(relative: str) -> str:
    return "embedforge" + (f".{relative}" if relative else "")


@pytest.mark.parametrize("relative", PATHS)
def test_module_path_imports(relative: str) -> None:
    reason = pending_reason(relative)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = importlib.import_module(embedforge_path(relative))
        except ImportError:
            if reason is not None:
                pytest.xfail(f"not built yet: {reason}")
            raise
    assert reason is None, f"{embedforge_path(relative)} imports now: remove it from PENDING"
    reference_module = importlib.import_module(f"sentence_transformers.{relative}".rstrip("."))
    missing = sorted(
        name
        for name in getattr(reference_module, "__all__", [])
        if not hasattr(module, name)
        and name not in PENDING_NAMES.get(relative, set())
        and not name.startswith(OUT_OF_SCOPE_NAMES)
    )
    assert not missing, f"{embedforge_path(relative)} lacks the public names {missing}"


def test_in_scope_paths_are_many() -> None:
    # Guards the walk itself: a broken walk would pass every test above vacuously.
    assert len(PATHS) > 200


def test_old_path_warns_and_names_the_new_one() -> None:
    import sys

    sys.modules.pop("embedforge.losses", None)
    with pytest.warns(DeprecationWarning, match=r"'embedforge\.losses'.*'embedforge\.sentence_transformer\.losses'"):
        old = importlib.import_module("embedforge.losses")
    assert old is importlib.import_module("embedforge.sentence_transformer.losses")


def test_old_class_path_keeps_the_class_on_its_package() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import embedforge.readers
        from embedforge.readers.InputExample import InputExample as from_old_module

    from embedforge.sentence_transformer.readers import InputExample

    assert from_old_module is InputExample
    assert embedforge.readers.InputExample is InputExample


def test_submodule_of_a_moved_package_is_the_same_module() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module("embedforge.losses.matryoshka")
    assert old is importlib.import_module("embedforge.sentence_transformer.losses.matryoshka")


def test_old_package_path_is_found_as_a_package() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        spec = importlib.util.find_spec("embedforge.models")
    assert spec is not None and spec.submodule_search_locations


def test_earlier_embedforge_paths_keep_their_classes() -> None:
    # embedforge's pre-6 layout kept InputModule next to Module; both paths give the same class.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from embedforge.models.module import InputModule as earlier

    from embedforge.base.modules.input_module import InputModule

    assert earlier is InputModule
