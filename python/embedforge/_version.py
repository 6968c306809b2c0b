"""The package version: the Rust crates' version, compiled into the native module (one number, in Cargo.toml)."""

from __future__ import annotations

from embedforge._core import __version__

__all__ = ["__version__"]
