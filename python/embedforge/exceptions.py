"""The exception hierarchy of embedforge.

Every error raised on purpose by embedforge, in Python or in the Rust core, is an
``EmbedforgeError``. The subclasses also derive from the built-in exception a user
would catch for that kind of problem (``ValueError``, ``FileNotFoundError``), so code
written against sentence-transformers' exceptions keeps working.
"""

from __future__ import annotations


class EmbedforgeError(Exception):
    """Base class of every error raised by embedforge."""


class InvalidArgumentError(EmbedforgeError, ValueError):
    """An argument has a value the callee cannot accept."""


class ModelNotFoundError(EmbedforgeError, FileNotFoundError):
    """A model folder or one of its required files does not exist locally."""


class ModelFormatError(EmbedforgeError, ValueError):
    """A model folder exists but its files are corrupt or do not agree with each other."""


class TokenizerError(EmbedforgeError, ValueError):
    """A tokenizer could not be loaded or could not encode its input."""


__all__ = [
    "EmbedforgeError",
    "InvalidArgumentError",
    "ModelFormatError",
    "ModelNotFoundError",
    "TokenizerError",
]
