"""The exception hierarchy of embedforge.

Every error raised on purpose by embedforge, in Python or in the Rust core, is an
``EmbedforgeError``. The subclasses also derive from the built-in exception a user
would catch for that kind of problem (``ValueError``, ``FileNotFoundError``, ``OSError``), so
code written against sentence-transformers' exceptions keeps working.

An I/O error of the Rust core arrives as the ``EmbedforgeIOError`` subclass matching its
cause, which is also the built-in ``OSError`` subclass ``open()`` would raise for it
(``PermissionError``, ``IsADirectoryError``, ...), with ``errno`` and ``filename`` set; a
missing file arrives as ``ModelNotFoundError``.
"""

from __future__ import annotations


class EmbedforgeError(Exception):
    """Base class of every error raised by embedforge."""


class InvalidArgumentError(EmbedforgeError, ValueError):
    """An argument has a value the callee cannot accept."""


class ModelNotFoundError(EmbedforgeError, FileNotFoundError):
    """A model folder or one of its required files does not exist locally."""


class EmbedforgeIOError(EmbedforgeError, OSError):
    """A file or folder exists (or should) but could not be read; ``filename`` names it."""

    def __str__(self) -> str:
        # Without an OS error code (e.g. a file that is not UTF-8) OSError would print "[Errno None]".
        if self.errno is None and self.strerror is not None and self.filename is not None:
            return f"{self.strerror}: {self.filename!r}"
        return super().__str__()


class EmbedforgePermissionError(EmbedforgeIOError, PermissionError):
    """A file or folder could not be read for lack of permission."""


class EmbedforgeIsADirectoryError(EmbedforgeIOError, IsADirectoryError):
    """A folder was found where a file was expected."""


class EmbedforgeNotADirectoryError(EmbedforgeIOError, NotADirectoryError):
    """A file was found where a folder was expected (e.g. as a parent of the path)."""


class EmbedforgeFileExistsError(EmbedforgeIOError, FileExistsError):
    """A file or folder that was to be created already exists."""


class ModelFormatError(EmbedforgeError, ValueError):
    """A model folder exists but its files are corrupt or do not agree with each other."""


class NotIndexedError(EmbedforgeError, RuntimeError):
    """An index (e.g. ``BM25``) was searched, scored or saved before it was given a corpus."""


class TokenizerError(EmbedforgeError, ValueError):
    """A tokenizer could not be loaded or could not encode its input."""


__all__ = [
    "EmbedforgeError",
    "EmbedforgeFileExistsError",
    "EmbedforgeIOError",
    "EmbedforgeIsADirectoryError",
    "EmbedforgeNotADirectoryError",
    "EmbedforgePermissionError",
    "InvalidArgumentError",
    "ModelFormatError",
    "ModelNotFoundError",
    "NotIndexedError",
    "TokenizerError",
]
