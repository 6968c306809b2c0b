"""Helpers shared inside embedforge; not part of the public API."""
