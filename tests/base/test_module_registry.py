"""The module registry: type strings of every generation load, and old-style modules save and load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from embedforge import SentenceTransformer
from embedforge.base.modules.registry import module_class_from_type
from embedforge.exceptions import ModelFormatError
from embedforge.sentence_transformer.modules import Normalize, Pooling, Transformer


class ScaleByTwo(nn.Module):
    """A third-party module of the old style: ``save(self, path)`` and ``load(path)`` only."""

    def forward(self, features: dict) -> dict:
        features["sentence_embedding"] = features["sentence_embedding"] * 2
        return features

    def save(self, path: str) -> None:
        with open(os.path.join(path, "scale.json"), "w") as f:
            json.dump({"factor": 2}, f)

    @staticmethod
    def load(path: str) -> ScaleByTwo:
        with open(os.path.join(path, "scale.json")) as f:
            assert json.load(f) == {"factor": 2}
        return ScaleByTwo()


@pytest.mark.parametrize(
    ("type_ref", "expected"),
    [
        ("sentence_transformers.models.Transformer", Transformer),
        ("sentence_transformers.models.Pooling", Pooling),
        ("sentence_transformers.base.modules.transformer.Transformer", Transformer),
        ("sentence_transformers.sentence_transformer.modules.pooling.Pooling", Pooling),
        ("sentence_transformers.base.modules.normalize.Normalize", Normalize),
        ("embedforge.models.Pooling", Pooling),
        ("embedforge.sentence_transformer.modules.pooling.Pooling", Pooling),
    ],
)
def test_every_generation_of_type_string_loads(type_ref: str, expected: type) -> None:
    assert module_class_from_type(type_ref) is expected


def test_unknown_library_class_is_a_clear_error() -> None:
    with pytest.raises(ModelFormatError, match="SpladePooling"):
        module_class_from_type("sentence_transformers.sparse_encoder.modules.SpladePooling")
    with pytest.raises(ModelFormatError, match="cannot be imported"):
        module_class_from_type("no_such_package.Module")
    with pytest.raises(ModelFormatError, match=r"not a torch.nn.Module"):
        module_class_from_type("json.dumps")


def test_old_style_module_saves_and_loads(tiny_bert_dir: Path, tmp_path: Path) -> None:
    transformer = Transformer(str(tiny_bert_dir))
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, ScaleByTwo()], device="cpu")
    model.save(str(tmp_path / "model"))

    entries = json.loads((tmp_path / "model" / "modules.json").read_text())
    assert entries[2]["type"] == f"{ScaleByTwo.__module__}.ScaleByTwo"
    assert (tmp_path / "model" / entries[2]["path"] / "scale.json").is_file()

    reloaded = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert isinstance(reloaded[2], ScaleByTwo)
    plain = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    texts = ["one sentence", "and another one"]
    torch.testing.assert_close(
        torch.from_numpy(reloaded.encode(texts)), 2 * torch.from_numpy(plain.encode(texts)), rtol=1e-6, atol=1e-6
    )
