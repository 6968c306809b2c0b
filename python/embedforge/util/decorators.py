"""Decorators that keep old argument names and call styles working, with a logged deprecation notice.

sentence-transformers renamed many arguments over its releases (``model_args`` became
``model_kwargs``, CrossEncoder's ``num_labels`` became keyword-only, ...). Scripts written for the
old names must keep running, so these wrappers translate the old call into the new one and log a
warning that names the old argument and its replacement. The notices go through the standard
``logging`` module (not ``warnings``), as sentence-transformers users expect.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Old keyword -> new keyword, for Transformer.__init__.
_TRANSFORMER_RENAMES = {
    "model_args": "model_kwargs",
    "tokenizer_args": "processor_kwargs",
    "config_args": "config_kwargs",
}

# Old keyword -> new keyword, for CrossEncoder.__init__.
_CROSS_ENCODER_INIT_RENAMES = {
    "model_name": "model_name_or_path",
    "automodel_args": "model_kwargs",
    "tokenizer_args": "processor_kwargs",
    "tokenizer_kwargs": "processor_kwargs",
    "config_args": "config_kwargs",
    "cache_dir": "cache_folder",
    "default_activation_function": "activation_fn",
}

# What CrossEncoder.__init__ took positionally after the model name before these became keyword-only.
_CROSS_ENCODER_OLD_POSITIONAL = ("num_labels", "max_length", "activation_fn", "device")


@functools.cache
def _fallback_warning_once(logger_name: str, message: str) -> None:
    """Log ``message`` once per process when transformers has not added ``Logger.warning_once``."""
    logging.getLogger(logger_name).warning(message)


def _warn_once(message: str) -> None:
    """Log ``message`` the first time it is seen, so a loop over old-style calls warns once."""
    # transformers adds an lru-cached Logger.warning_once; sharing its cache means test suites that
    # clear it between tests (as sentence-transformers' does) see each notice again.
    warning_once = getattr(logger, "warning_once", None)
    if warning_once is not None:
        warning_once(message)
    else:
        _fallback_warning_once(logger.name, message)


def _move_renamed(kwargs: dict[str, Any], old_name: str, new_name: str) -> None:
    """Move ``kwargs[old_name]`` to ``new_name`` unless the new name was given too (then it wins)."""
    value = kwargs.pop(old_name)
    kwargs.setdefault(new_name, value)


def deprecated_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept each ``old=...`` keyword of ``renames`` (``old="new"``) as ``new=...``, logging a notice.

    When a caller passes both names, the new one wins and the old value is dropped.
    """

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old_name, new_name in renames.items():
                if old_name in kwargs:
                    _warn_once(
                        f"The `{old_name}` argument was renamed and is now deprecated. Please use `{new_name}` instead."
                    )
                    _move_renamed(kwargs, old_name, new_name)
            return func(*args, **kwargs)

        return cast("F", wrapper)

    return decorator


def transformer_kwargs_decorator(func: F) -> F:
    """Translate the old keyword arguments of ``Transformer.__init__``.

    ``model_args``, ``tokenizer_args`` and ``config_args`` become ``model_kwargs``,
    ``processor_kwargs`` and ``config_kwargs``; a ``cache_dir`` is copied into each of those three
    dicts unless one already sets its own.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for old_name, new_name in _TRANSFORMER_RENAMES.items():
            if old_name in kwargs:
                _warn_once(
                    f"The Transformer `{old_name}` argument was renamed and is now deprecated, "
                    f"please use `{new_name}` instead."
                )
                _move_renamed(kwargs, old_name, new_name)

        if "cache_dir" in kwargs:
            cache_dir = kwargs.pop("cache_dir")
            # cache_dir=None was the old default: passing it explicitly changes nothing.
            if cache_dir is not None:
                _warn_once(
                    "The Transformer `cache_dir` argument is deprecated. Please pass `cache_dir` via "
                    "`model_kwargs`, `processor_kwargs`, and/or `config_kwargs` instead."
                )
                for dict_name in ("model_kwargs", "processor_kwargs", "config_kwargs"):
                    # A copy: the caller's dict must not change under them.
                    merged = dict(kwargs.get(dict_name) or {})
                    merged.setdefault("cache_dir", cache_dir)
                    kwargs[dict_name] = merged

        return func(*args, **kwargs)

    return cast("F", wrapper)


def cross_encoder_init_args_decorator(func: F) -> F:
    """Translate the old arguments of ``CrossEncoder.__init__``.

    Renamed keywords: ``model_name``, ``automodel_args``, ``tokenizer_args``, ``tokenizer_kwargs``,
    ``config_args``, ``cache_dir`` and ``default_activation_function`` (see the table above);
    ``classifier_dropout`` moves into ``config_kwargs``. Positional arguments after the model name
    are read, in order, as ``num_labels``, ``max_length``, ``activation_fn`` and ``device``, which
    are keyword-only now; a keyword given as well wins over its positional value.
    """

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > 1:
            # Extra positionals beyond the four old ones had no meaning before either: they are dropped.
            for name, value in zip(_CROSS_ENCODER_OLD_POSITIONAL, args[1:]):
                logger.warning(
                    f"Passing `{name}` as a positional argument to CrossEncoder is deprecated. "
                    f"Please use `{name}={value!r}` as a keyword argument instead."
                )
                kwargs.setdefault(name, value)
            args = args[:1]

        for old_name, new_name in _CROSS_ENCODER_INIT_RENAMES.items():
            if old_name in kwargs:
                _warn_once(
                    f"The CrossEncoder `{old_name}` argument was renamed and is now deprecated. "
                    f"Please use `{new_name}` instead."
                )
                _move_renamed(kwargs, old_name, new_name)

        if "classifier_dropout" in kwargs:
            dropout = kwargs.pop("classifier_dropout")
            logger.warning(
                "The CrossEncoder `classifier_dropout` argument is deprecated. "
                f"Please use `config_kwargs={{'classifier_dropout': {dropout}}}` instead."
            )
            config_kwargs = kwargs.get("config_kwargs")
            if config_kwargs is None:
                kwargs["config_kwargs"] = {"classifier_dropout": dropout}
            else:
                config_kwargs["classifier_dropout"] = dropout

        return func(self, *args, **kwargs)

    return cast("F", wrapper)


def cross_encoder_predict_rank_args_decorator(func: F) -> F:
    """Translate the old keyword arguments of ``CrossEncoder.predict`` and ``CrossEncoder.rank``.

    ``sentences`` becomes ``inputs`` and ``activation_fct`` becomes ``activation_fn``.
    ``num_workers`` is dropped (it had no effect any more); on ``rank``, ``apply_softmax`` is dropped,
    and ``convert_to_numpy`` / ``convert_to_tensor`` are dropped on any wrapped method whose
    signature no longer declares them. Each notice names the wrapped method.
    """
    method = func.__name__
    declared = inspect.signature(func).parameters
    dropped_convert_kwargs = [name for name in ("convert_to_numpy", "convert_to_tensor") if name not in declared]

    @deprecated_kwargs(sentences="inputs", activation_fct="activation_fn")
    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "num_workers" in kwargs:
            kwargs.pop("num_workers")
            _warn_once(
                f"The CrossEncoder.{method} `num_workers` argument is deprecated and has no effect. "
                "It will be removed in a future version."
            )
        if method == "rank" and "apply_softmax" in kwargs:
            kwargs.pop("apply_softmax")
            _warn_once(
                "The CrossEncoder.rank `apply_softmax` argument is deprecated and has no effect, as `rank` "
                "only supports models with `num_labels=1`. It will be removed in a future version."
            )
        for name in dropped_convert_kwargs:
            if name in kwargs:
                kwargs.pop(name)
                _warn_once(
                    f"The CrossEncoder.{method} `{name}` argument is deprecated and has no effect, as "
                    f"`{method}` always returns Python floats. It will be removed in a future version."
                )
        return func(self, *args, **kwargs)

    return cast("F", wrapper)


def save_to_hub_args_decorator(func: F) -> F:
    """Keep old ``save_to_hub`` calls working: ``repo_name`` becomes ``repo_id``, and a ``None`` is
    inserted as the third positional argument, where the later-added ``token`` parameter sits."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        repo_name = kwargs.pop("repo_name", None)
        if repo_name and "repo_id" not in kwargs:
            _warn_once(
                "Providing a `repo_name` keyword argument to `save_to_hub` is deprecated. Please use `repo_id` instead."
            )
            kwargs["repo_id"] = repo_name
        if len(args) >= 2:
            args = (*args[:2], None, *args[2:])
        return func(self, *args, **kwargs)

    return cast("F", wrapper)
