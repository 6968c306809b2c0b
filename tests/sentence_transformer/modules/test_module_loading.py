"""Loading modules the way sentence-transformers 6 does: saved precision, foreign config keys, old pooling
flags, and the trust gate for a word tokenizer named in a config."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from embedforge.base.modules.dense import Dense
from embedforge.exceptions import ModelFormatError
from embedforge.sentence_transformer.modules import Pooling, WordEmbeddings
from embedforge.sentence_transformer.modules import word_embeddings as word_embeddings_module
from embedforge.sentence_transformer.modules.pooling import _convert_legacy_pooling_kwargs
from embedforge.sentence_transformer.modules.tokenizer import WhitespaceTokenizer


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.float32])
def test_dense_reloads_in_its_saved_precision(dtype: torch.dtype, tmp_path: Path) -> None:
    dense = Dense(6, 4, activation_function=nn.Tanh()).to(dtype)
    dense.save(str(tmp_path))
    loaded = Dense.load(str(tmp_path))
    assert loaded.linear.weight.dtype == dtype
    assert torch.equal(loaded.linear.weight, dense.linear.weight)
    features = {"sentence_embedding": torch.ones(2, 6, dtype=dtype)}
    assert loaded(dict(features))["sentence_embedding"].dtype == dtype
    # After a float32 module (e.g. a StaticEmbedding), the input is cast to the layer's precision.
    float32_input = {"sentence_embedding": torch.ones(2, 6)}
    assert loaded(float32_input)["sentence_embedding"].dtype == dtype


def test_dense_drops_unknown_config_keys_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Dense(6, 4, bias=False).save(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    config["a_future_option"] = 42
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        loaded = Dense.load(str(tmp_path))
    assert (loaded.in_features, loaded.out_features) == (6, 4)
    assert not hasattr(loaded, "a_future_option")
    assert any("a_future_option" in record.getMessage() for record in caplog.records)


def test_legacy_pooling_flags_convert_in_place() -> None:
    flags = {key: False for key in ("cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens")}
    config: dict[str, Any] = {
        "embedding_dimension": 8,
        **{f"pooling_mode_{key}": value for key, value in flags.items()},
        "pooling_mode_mean_tokens": True,
        "pooling_mode_lasttoken": False,
    }
    _convert_legacy_pooling_kwargs(config)
    assert config == {"embedding_dimension": 8, "pooling_mode": "mean"}

    both = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True, "include_prompt": False}
    _convert_legacy_pooling_kwargs(both)
    assert both == {"pooling_mode": ("cls", "mean"), "include_prompt": False}

    explicit = {"pooling_mode": "max", "pooling_mode_cls_token": True}
    _convert_legacy_pooling_kwargs(explicit)
    assert explicit == {"pooling_mode": "max"}


def test_pooling_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="Invalid pooling mode 'nonexistent'"):
        Pooling(embedding_dimension=8, pooling_mode="nonexistent")


@pytest.mark.parametrize("trust_remote_code", [False, True])
def test_word_tokenizer_class_goes_through_the_trust_gate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trust_remote_code: bool
) -> None:
    vocab = ["hello", "world", "foo"]
    WordEmbeddings(WhitespaceTokenizer(vocab), np.ones((3, 4), dtype=np.float32)).save(str(tmp_path))
    config_path = tmp_path / "wordembedding_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "somebody.else.Tokenizer"
    config_path.write_text(json.dumps(config), encoding="utf-8")

    captured: dict[str, Any] = {}

    def gate(class_ref: str, **kwargs: Any) -> type:
        captured.update(kwargs, class_ref=class_ref)
        return WhitespaceTokenizer

    monkeypatch.setattr(word_embeddings_module, "import_module_class", gate)
    loaded = WordEmbeddings.load(str(tmp_path), trust_remote_code=trust_remote_code)
    assert loaded.tokenizer.get_vocab() == vocab
    assert captured == {
        "class_ref": "somebody.else.Tokenizer",
        "model_name_or_path": str(tmp_path),
        "trust_remote_code": trust_remote_code,
    }


def test_untrusted_word_tokenizer_class_is_refused(tmp_path: Path) -> None:
    WordEmbeddings(WhitespaceTokenizer(["a"]), np.ones((1, 2), dtype=np.float32)).save(str(tmp_path))
    config_path = tmp_path / "wordembedding_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "somebody.else.Tokenizer"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="trust_remote_code"):
        WordEmbeddings.load(str(tmp_path))
