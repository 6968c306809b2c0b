"""InputModule's preprocess/tokenize contract and Router routing, with small stand-in modules."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import pytest
import torch

from embedforge import SentenceTransformer
from embedforge.base.modules import InputModule, Module, Router


class TokenizeOnly(InputModule):
    """An old-style input module: it implements tokenize() only."""

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return features

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, Any]:
        return {"texts": texts}


class Lengths(InputModule):
    """Embeds each text as [its length, 1], and remembers the keyword arguments forward received."""

    forward_kwargs: ClassVar[set[str]] = {"flag"}

    def __init__(self, max_seq_length: int | None = None) -> None:
        super().__init__()
        self.max_seq_length = max_seq_length  # a plain attribute must be settable on an input module
        self.seen: set[str] = set()
        # A list, not an attribute: nn.Module would adopt the model as a submodule (a cycle).
        self.ready_with: list[Any] = []

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = self._prepend_prompt(inputs, prompt) if prompt else inputs
        return {"lengths": torch.tensor([[float(len(text)), 1.0] for text in texts])}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.seen.update(kwargs)
        features["sentence_embedding"] = features["lengths"]
        return features

    def on_model_ready(self, model: Any) -> None:
        self.ready_with.append(model)


class Negate(Module):
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = -features["sentence_embedding"]
        return features


def test_tokenize_only_modules_still_preprocess(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert TokenizeOnly().preprocess(["a"], prompt="p: ") == {"texts": ["p: a"]}
    assert "overrides `tokenize` instead of `preprocess`" in caplog.text

    class Nothing(InputModule):
        def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return features

    with pytest.raises(NotImplementedError, match="must implement the `preprocess` method"):
        Nothing().preprocess(["a"])
    assert Nothing().modalities == ["text"]


def test_router_picks_routes_by_task_and_passes_declared_kwargs() -> None:
    query, document = Lengths(8), Lengths(16)
    router = Router({"query": [query], "document": [document, Negate()]}, default_route="document")
    model = SentenceTransformer(modules=[router])
    assert query.ready_with == [model] and document.ready_with == [model]
    assert model.max_seq_length == 16

    assert model.encode_query(["abc"]).tolist() == [[3.0, 1.0]]
    assert model.encode(["abc"], flag=True).tolist() == [[-3.0, -1.0]]
    assert document.seen == {"flag"} and query.seen == set()
    assert model.encode([{"query": "ab"}]).tolist() == [[2.0, 1.0]]  # the old Asym input form


def test_router_errors_name_the_routes() -> None:
    with pytest.raises(ValueError, match="cannot be empty"):
        Router({})
    with pytest.raises(ValueError, match="Default route 'x' not found"):
        Router({"query": [Lengths()]}, default_route="x")
    router = Router({"query": [Lengths()], "document": [Lengths()]}, allow_empty_key=False)
    router.eval()
    with pytest.raises(ValueError, match="Available routes: task='query' and task='document'"):
        router.preprocess(["a"])
    with pytest.raises(ValueError, match="No route found for task type 'other'"):
        router.preprocess(["a"], task="other")
    with pytest.raises(ValueError, match="different task types"):
        router.preprocess([{"query": "a"}, {"document": "b"}])
