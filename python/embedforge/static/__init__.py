"""Rust-backed helpers for static-embedding models that import no model class (distillation, bag-mean rows)."""
