"""Argument helpers shared by modules: renamed keyword arguments and value checks."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from embedforge.exceptions import InvalidArgumentError

_F = TypeVar("_F", bound=Callable[..., Any])


def accept_renamed_kwargs(**renames: str) -> Callable[[_F], _F]:
    """Let ``__init__`` take an argument under its old name (``old="new"``), with a FutureWarning."""

    def decorate(init: _F) -> _F:
        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InvalidArgumentError(f"pass either {new}= or its old name {old}=, not both")
                    warnings.warn(f"{old}= was renamed to {new}=", FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return init(self, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def check_positive_int(name: str, value: Any) -> None:
    """Reject anything but a positive integer for the argument ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
