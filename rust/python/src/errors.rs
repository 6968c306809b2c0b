//! `embedforge::Error` -> Python exception, in one place.
//!
//! The exception classes live in the pure-Python `embedforge.exceptions`, imported when an
//! error is raised, so that `except embedforge.InvalidArgumentError` catches Rust errors too.
//! Which variant becomes which class is documented on the variants of [`embedforge::Error`].

use std::io::ErrorKind;
use std::path::Path;

use embedforge::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Converts a core error into the matching `embedforge.exceptions` class.
pub(crate) fn to_py_err(error: Error) -> PyErr {
    Python::attach(|py| match &error {
        Error::Io { path, source } => {
            let class = match source.kind() {
                ErrorKind::NotFound => "ModelNotFoundError",
                ErrorKind::PermissionDenied => "EmbedforgePermissionError",
                ErrorKind::IsADirectory => "EmbedforgeIsADirectoryError",
                ErrorKind::NotADirectory => "EmbedforgeNotADirectoryError",
                ErrorKind::AlreadyExists => "EmbedforgeFileExistsError",
                _ => "EmbedforgeIOError",
            };
            // A NotFound without an OS code still means ENOENT, as FileNotFoundError does.
            let errno = source
                .raw_os_error()
                .or_else(|| (source.kind() == ErrorKind::NotFound).then_some(libc::ENOENT));
            let strerror = match errno {
                Some(code) => os_strerror(py, code).unwrap_or_else(|| source.to_string()),
                None => source.to_string(),
            };
            os_error(py, class, errno, strerror, path, &error)
        }
        Error::NotFound { path, what } => os_error(
            py,
            "ModelNotFoundError",
            Some(libc::ENOENT),
            format!("{what} not found"),
            path,
            &error,
        ),
        Error::InvalidArgument { .. } => new_err(py, "InvalidArgumentError", error.to_string()),
        Error::ModelFormat { .. } => new_err(py, "ModelFormatError", error.to_string()),
        Error::Tokenizer(_) => new_err(py, "TokenizerError", error.to_string()),
        _ => new_err(py, "EmbedforgeError", error.to_string()),
    })
}

/// An `InvalidArgumentError` naming the argument, the value and what was expected.
pub(crate) fn invalid_argument(
    name: impl Into<String>,
    value: impl std::fmt::Display,
    expected: impl Into<String>,
) -> PyErr {
    to_py_err(Error::invalid_argument(name, value, expected))
}

/// The OS's text for an error code, as Python's own `OSError`s carry it (`os.strerror`).
fn os_strerror(py: Python<'_>, code: i32) -> Option<String> {
    py.import("os")
        .and_then(|os| os.call_method1("strerror", (code,)))
        .and_then(|s| s.extract())
        .ok()
}

/// An `OSError` subclass built as `cls(errno, strerror, filename)`, so that `errno`,
/// `strerror` and `filename` are set and the message reads `[Errno 13] Permission denied:
/// '/path'` like one raised by `open()`.
fn os_error(
    py: Python<'_>,
    class: &str,
    errno: Option<i32>,
    strerror: String,
    path: &Path,
    error: &Error,
) -> PyErr {
    match exception_class(py, class) {
        Ok(ty) => PyErr::from_type(ty, (errno, strerror, path.as_os_str().to_owned())),
        Err(import_error) => fallback(class, error.to_string(), import_error),
    }
}

fn new_err(py: Python<'_>, class: &str, message: String) -> PyErr {
    match exception_class(py, class) {
        Ok(ty) => PyErr::from_type(ty, message),
        Err(import_error) => fallback(class, message, import_error),
    }
}

fn exception_class<'py>(py: Python<'py>, class: &str) -> PyResult<Bound<'py, PyType>> {
    py.import("embedforge.exceptions")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
}

fn fallback(class: &str, message: String, import_error: PyErr) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{message} (could not raise embedforge.exceptions.{class}: {import_error})"
    ))
}
