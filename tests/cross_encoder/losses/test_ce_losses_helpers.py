"""Shared helpers of the cross-encoder loss tests (no tests here): tiny models, loss runs, reference scores.

One tiny BERT classifier is saved as a CrossEncoder folder once per session and loaded by both
libraries, so parity tests compare the two implementations on identical weights.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from conftest import write_tiny_bert
from embedforge import CrossEncoder

#: Tolerance of every value and gradient comparison (the brief's bar; observed differences are ~1e-7 or 0).
ATOL = 1e-4


@functools.cache
def _folders() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ce-losses-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def model_folder(num_labels: int = 1) -> Path:
    """A tiny 2-layer BERT sequence classifier (dropout 0.1) saved by embedforge as a CrossEncoder folder."""
    from transformers import BertForSequenceClassification

    raw = write_tiny_bert(
        _folders() / f"raw-{num_labels}",
        BertForSequenceClassification,
        seed=3 + num_labels,
        num_labels=num_labels,
        initializer_range=0.2,
    )
    folder = _folders() / f"ce-{num_labels}"
    CrossEncoder(str(raw), device="cpu").save(str(folder))
    return folder


def our_model(num_labels: int = 1) -> CrossEncoder:
    """Our CrossEncoder on the shared folder, in eval mode (no dropout) unless a test turns training on."""
    return CrossEncoder(str(model_folder(num_labels)), device="cpu").eval()


def st_model(num_labels: int = 1) -> Any:
    """sentence-transformers' CrossEncoder on the same folder (skips the test when it is not installed)."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder as StCrossEncoder

    return StCrossEncoder(str(model_folder(num_labels)), device="cpu").eval()


def st_losses() -> ModuleType:
    """``sentence_transformers.cross_encoder.losses`` (skips the test when it is not installed)."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.cross_encoder import losses

    return losses


# -- running a loss ----------------------------------------------------------------------------------


def _param_name(name: str) -> str:
    # Our Transformer module calls the Hugging Face model `auto_model`, sentence-transformers 6 `model`:
    # drop the module prefix so both name the same tensor alike ("bert.encoder...", "classifier.weight").
    return name.split(".", 2)[2]


def grads(model: nn.Module) -> dict[str, Tensor]:
    """The parameter gradients of ``model`` by library-neutral name (parameters without a gradient left out)."""
    return {_param_name(name): p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def run(loss: Callable[..., Tensor], model: nn.Module, *args: Any, seed: int = 0, **kwargs: Any) -> tuple[float, dict]:
    """Loss value and parameter gradients of one forward and backward, from a fixed seed and zeroed gradients."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    value = loss(*args, **kwargs)
    value.backward()
    return value.item(), grads(model)


def max_grad_diff(ours: dict[str, Tensor], theirs: dict[str, Tensor]) -> float:
    """Largest absolute difference between two gradient sets, which must cover the same parameters."""
    assert ours.keys() == theirs.keys(), sorted(set(ours) ^ set(theirs))
    return max((ours[name] - theirs[name]).abs().max().item() for name in ours)


def assert_same_run(ours: tuple[float, dict], theirs: tuple[float, dict], atol: float = ATOL) -> None:
    """Same value and same gradients (to ``atol``), and the gradients are not all zero."""
    assert abs(ours[0] - theirs[0]) <= atol, (ours[0], theirs[0])
    assert max_grad_diff(ours[1], theirs[1]) <= atol
    assert any(grad.abs().max() > 0 for grad in ours[1].values())


# -- independent reference scores --------------------------------------------------------------------


class PairScorer:
    """Differentiable logits of (query, document) pairs straight from the Hugging Face model, one pair per call.

    Independent of the losses' path (our ``preprocess``, padding, batching): the Hugging Face tokenizer
    encodes each pair alone and the bare transformers model scores it.
    """

    def __init__(self, model: CrossEncoder) -> None:
        self.model = model
        self._cache: dict[tuple[str, str], Tensor] = {}

    def __call__(self, query: str, document: str) -> Tensor:
        key = (query, document)
        if key not in self._cache:
            encoded = self.model.tokenizer(query, document, truncation=True, return_tensors="pt")
            self._cache[key] = self.model.model(**encoded).logits[0]
        return self._cache[key]

    def column(self, queries: Sequence[str], documents: Sequence[str]) -> Tensor:
        """Scores of the row-wise pairs, shape ``(rows, num_labels)``."""
        return torch.stack([self(query, document) for query, document in zip(queries, documents)])


def run_reference(model: CrossEncoder, formula: Callable[[PairScorer], Tensor]) -> tuple[float, dict]:
    """Value and parameter gradients of a reference formula evaluated on :class:`PairScorer` scores."""
    model.zero_grad(set_to_none=True)
    value = formula(PairScorer(model))
    value.backward()
    return value.item(), grads(model)


def collate(rows: list[dict[str, Any]], label_column: str | None) -> tuple[list[list[Any]], Any]:
    """The cross-encoder collator's rule: text columns by position; a list-valued label column becomes a
    list of tensors, a scalar one a tensor."""
    columns = [name for name in rows[0] if name != label_column]
    inputs = [[row[name] for row in rows] for name in columns]
    if label_column is None:
        return inputs, None
    if isinstance(rows[0][label_column], (list, tuple)):
        return inputs, [torch.tensor(row[label_column]) for row in rows]
    return inputs, torch.tensor([row[label_column] for row in rows])
