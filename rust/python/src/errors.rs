//! `embedforge::Error` -> Python exception, in one place.
//!
//! The exception classes live in the pure-Python `embedforge.exceptions`, imported when an
//! error is raised, so that `except embedforge.InvalidArgumentError` catches Rust errors too.

use embedforge::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Converts a core error into the matching `embedforge.exceptions` class.
pub(crate) fn to_py_err(error: Error) -> PyErr {
    let class = if error.is_not_found() {
        "ModelNotFoundError"
    } else {
        match &error {
            Error::InvalidArgument { .. } => "InvalidArgumentError",
            Error::ModelFormat { .. } => "ModelFormatError",
            Error::Tokenizer(_) => "TokenizerError",
            _ => "EmbedforgeError",
        }
    };
    Python::attach(|py| new_err(py, class, error.to_string()))
}

/// An `InvalidArgumentError` naming the argument, the value and what was expected.
pub(crate) fn invalid_argument(
    name: impl Into<String>,
    value: impl std::fmt::Display,
    expected: impl Into<String>,
) -> PyErr {
    to_py_err(Error::invalid_argument(name, value, expected))
}

fn new_err(py: Python<'_>, class: &str, message: String) -> PyErr {
    let ty = py
        .import("embedforge.exceptions")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match ty {
        Ok(ty) => PyErr::from_type(ty, message),
        Err(import_error) => PyRuntimeError::new_err(format!(
            "{message} (could not raise embedforge.exceptions.{class}: {import_error})"
        )),
    }
}
