"""similarity_fct_name: the name a loss's config (and the model card) gives its scoring callable."""

from __future__ import annotations

import functools
import types
from typing import Any

import pytest

from embedforge.util import cos_sim, dot_score, similarity_fct_name


class _Scorer:
    def __call__(self, a: Any, b: Any) -> None: ...


class _Configured:
    def __call__(self, a: Any, b: Any) -> None: ...

    def get_config_dict(self) -> dict[str, Any]:
        return {"top_k": 8, "scale": None}


CASES = [
    cos_sim,
    functools.partial(cos_sim),
    functools.partial(dot_score, a=1),
    functools.partial(dot_score, "positional"),  # positional bindings are not shown
    _Scorer(),
]


@pytest.mark.parametrize("scorer", CASES)
def test_matches_sentence_transformers(scorer: Any) -> None:
    theirs = pytest.importorskip("sentence_transformers.util")
    assert similarity_fct_name(scorer) == theirs.similarity_fct_name(scorer)


def test_by_hand() -> None:
    assert similarity_fct_name(cos_sim) == "cos_sim"
    assert similarity_fct_name(functools.partial(dot_score, a=1)) == "dot_score(a=1)"
    assert similarity_fct_name(_Scorer()) == "_Scorer"
    assert similarity_fct_name(_Configured()) == "_Configured(top_k=8, scale=None)"


def test_a_models_similarity_method_names_the_function_it_uses() -> None:
    model = types.SimpleNamespace(similarity_fn_name="dot")
    model.similarity = types.MethodType(lambda self, a, b: None, model)
    model.similarity.__func__.__name__ = "similarity"
    assert similarity_fct_name(model.similarity) == "dot_score"
