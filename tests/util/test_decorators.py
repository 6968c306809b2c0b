"""embedforge.util.decorators: old argument names and call styles become the new ones, with a logged notice.

Each case is checked by hand and, where sentence-transformers is installed, against its decorator
applied to the same function (the oracle for the translated arguments).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from embedforge.util import decorators as ours


@pytest.fixture(autouse=True)
def _fresh_warning_once_cache() -> None:
    # transformers' Logger.warning_once caches messages per process; each test wants to see its notices.
    cache_clear = getattr(getattr(logging.Logger, "warning_once", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()
    ours._fallback_warning_once.cache_clear()


def _theirs() -> Any:
    return pytest.importorskip("sentence_transformers.util.decorators")


def _echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def _same_as_oracle(name: str, call_args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> Any:
    """Apply our decorator and sentence-transformers' to ``_echo`` and compare what the function receives."""
    ours_decorator: Callable[..., Any] = getattr(ours, name)
    theirs_decorator: Callable[..., Any] = getattr(_theirs(), name)
    got = ours_decorator(_echo)(*call_args, **dict(call_kwargs))
    expected = theirs_decorator(_echo)(*call_args, **dict(call_kwargs))
    assert got == expected
    return got


def test_deprecated_kwargs_renames_and_new_name_wins(caplog: pytest.LogCaptureFixture) -> None:
    @ours.deprecated_kwargs(old="new", other="renamed")
    def func(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    with caplog.at_level(logging.WARNING):
        assert func(old=1) == {"new": 1}
        assert func(old=1, new=2, other=3) == {"new": 2, "renamed": 3}
    assert "`old` argument was renamed" in caplog.text
    assert "`new`" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert func(new=5) == {"new": 5}
    assert caplog.text == ""


def test_deprecated_kwargs_matches_oracle() -> None:
    theirs = _theirs()
    for kwargs in ({"old": 1}, {"old": 1, "new": 2}, {"new": 3}, {"unrelated": 4}):
        got = ours.deprecated_kwargs(old="new")(_echo)("pos", **kwargs)
        assert got == theirs.deprecated_kwargs(old="new")(_echo)("pos", **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model_args": {"a": 1}},
        {"tokenizer_args": {"b": 2}, "processor_kwargs": {"c": 3}},
        {"config_args": {"d": 4}},
        {"cache_dir": "/cache"},
        {"cache_dir": "/cache", "model_kwargs": {"cache_dir": "/mine"}},
        {"cache_dir": None},
    ],
)
def test_transformer_kwargs_decorator_matches_oracle(kwargs: dict[str, Any]) -> None:
    _same_as_oracle("transformer_kwargs_decorator", (), kwargs)


def test_transformer_kwargs_decorator_does_not_change_the_callers_dict() -> None:
    mine = {"cache_dir": "/mine"}
    _, kwargs = ours.transformer_kwargs_decorator(_echo)(cache_dir="/cache", model_kwargs=mine)
    assert mine == {"cache_dir": "/mine"}
    assert kwargs["processor_kwargs"] == {"cache_dir": "/cache"}


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((None, "model"), {"model_name": "m"}),
        ((None, "model", 2, 128), {}),
        ((None, "model", 2, 128, "sigmoid", "cpu"), {}),
        ((None, "model", 2), {"num_labels": 5}),
        ((None,), {"automodel_args": {"a": 1}, "tokenizer_kwargs": {"b": 2}, "cache_dir": "/c"}),
        ((None,), {"default_activation_function": "tanh", "activation_fn": "sigmoid"}),
        ((None,), {"classifier_dropout": 0.25}),
        ((None,), {"classifier_dropout": 0.25, "config_kwargs": {"other": True}}),
    ],
)
def test_cross_encoder_init_args_decorator_matches_oracle(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _same_as_oracle("cross_encoder_init_args_decorator", args, kwargs)


def test_cross_encoder_init_positional_arguments_by_hand(caplog: pytest.LogCaptureFixture) -> None:
    @ours.cross_encoder_init_args_decorator
    def init(self: Any, model_name_or_path: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        return model_name_or_path, kwargs

    with caplog.at_level(logging.WARNING):
        name, kwargs = init(None, "model", 3, 256)
    assert (name, kwargs) == ("model", {"num_labels": 3, "max_length": 256})
    assert "`num_labels` as a positional argument" in caplog.text
    assert "max_length=256" in caplog.text


def test_cross_encoder_predict_rank_decorator_adapts_to_the_method(caplog: pytest.LogCaptureFixture) -> None:
    def predict(self: Any, inputs: Any = None, convert_to_numpy: bool = True, **kwargs: Any) -> dict[str, Any]:
        return {"inputs": inputs, "convert_to_numpy": convert_to_numpy, **kwargs}

    def rank(self: Any, query: Any = None, **kwargs: Any) -> dict[str, Any]:
        return {"query": query, **kwargs}

    wrapped_predict = ours.cross_encoder_predict_rank_args_decorator(predict)
    wrapped_rank = ours.cross_encoder_predict_rank_args_decorator(rank)
    with caplog.at_level(logging.WARNING):
        assert wrapped_predict(None, sentences=["a"], convert_to_numpy=False, num_workers=2) == {
            "inputs": ["a"],
            "convert_to_numpy": False,
        }
        assert wrapped_rank(None, "q", activation_fct="f", apply_softmax=True, convert_to_tensor=True) == {
            "query": "q",
            "activation_fn": "f",
        }
    assert "CrossEncoder.predict `num_workers`" in caplog.text
    assert "CrossEncoder.rank `apply_softmax`" in caplog.text
    assert "CrossEncoder.rank `convert_to_tensor`" in caplog.text
    assert "CrossEncoder.predict `convert_to_numpy`" not in caplog.text
    assert wrapped_rank.__name__ == "rank"


def test_cross_encoder_predict_rank_decorator_matches_oracle() -> None:
    theirs = _theirs()

    def rank(self: Any, query: Any = None, **kwargs: Any) -> dict[str, Any]:
        return {"query": query, **kwargs}

    kwargs = {"query": "q", "activation_fct": "f", "num_workers": 1, "apply_softmax": False, "convert_to_numpy": True}
    got = ours.cross_encoder_predict_rank_args_decorator(rank)(None, **kwargs)
    assert got == theirs.cross_encoder_predict_rank_args_decorator(rank)(None, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((None,), {"repo_name": "r"}), ((None,), {"repo_name": "old", "repo_id": "new"}), ((None, "a", "b", "c"), {})],
)
def test_save_to_hub_args_decorator_matches_oracle(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    got = _same_as_oracle("save_to_hub_args_decorator", args, kwargs)
    if len(args) >= 3:
        # The token slot is inserted after the first two positionals (self excluded).
        assert got[0] == (None, "a", "b", None, "c")


def test_notices_are_logged_once_per_message(caplog: pytest.LogCaptureFixture) -> None:
    func = ours.deprecated_kwargs(legacy="modern")(_echo)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            func(legacy=1)
    assert caplog.text.count("`legacy` argument was renamed") == 1
