//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in embedforge's Rust core.
///
/// Each variant's doc names the `embedforge.exceptions` class the Python bindings raise for it
/// (`rust/python/src/errors.rs`); every one of them is an `EmbedforgeError`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder exists (or should) but could not be read.
    ///
    /// Python: an `EmbedforgeIOError` (an `OSError`) chosen by `source.kind()`:
    /// `PermissionDenied` -> `EmbedforgePermissionError` (`PermissionError`), `IsADirectory`
    /// -> `EmbedforgeIsADirectoryError` (`IsADirectoryError`), `NotADirectory` ->
    /// `EmbedforgeNotADirectoryError` (`NotADirectoryError`), `AlreadyExists` ->
    /// `EmbedforgeFileExistsError` (`FileExistsError`), any other kind -> `EmbedforgeIOError`
    /// itself; `NotFound` (only if built directly, [`Error::io`] turns it into
    /// [`Error::NotFound`]) -> `ModelNotFoundError`. `errno` and `filename` are set from the
    /// OS error code (when there is one) and `path`.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A model folder or one of its required files does not exist.
    ///
    /// Python: `ModelNotFoundError` (a `FileNotFoundError`), with `errno` ENOENT and `filename`.
    #[error("{what} not found: {}", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
        /// What was expected there, e.g. "model folder" or "tokenizer file".
        what: String,
    },

    /// An argument has a value the callee cannot accept.
    ///
    /// Python: `InvalidArgumentError` (a `ValueError`).
    #[error("invalid value for `{name}`: got {value}, expected {expected}")]
    InvalidArgument {
        /// The argument's name.
        name: String,
        /// The value that was given, rendered for the message.
        value: String,
        /// What would have been accepted.
        expected: String,
    },

    /// The tokenizer could not be loaded, serialised, or could not encode its input.
    ///
    /// Python: `TokenizerError` (a `ValueError`).
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// A model file exists but is corrupt or disagrees with the rest of the folder.
    ///
    /// Python: `ModelFormatError` (a `ValueError`).
    #[error("invalid model file {}: {message}", path.display())]
    ModelFormat {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid_argument(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            name: name.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Builds an [`Error::ModelFormat`].
    pub fn model_format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::ModelFormat {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::Io`], or [`Error::NotFound`] when the file is simply missing, so that
    /// callers can tell "absent" from "unreadable".
    pub fn io(path: impl Into<PathBuf>, what: &str, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound {
                path,
                what: what.to_owned(),
            }
        } else {
            Self::Io { path, source }
        }
    }

    /// Whether the error means "this path does not exist".
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound { .. } => true,
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_argument_value_and_expectation() {
        let e = Error::invalid_argument("max_length", 0, "a positive integer");
        assert_eq!(
            e.to_string(),
            "invalid value for `max_length`: got 0, expected a positive integer"
        );
    }

    #[test]
    fn missing_file_becomes_not_found() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::io("/x/tokenizer.json", "tokenizer file", source);
        assert!(matches!(e, Error::NotFound { .. }));
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "tokenizer file not found: /x/tokenizer.json");
    }

    #[test]
    fn other_io_errors_stay_io() {
        let source = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no");
        let e = Error::io("/x", "model folder", source);
        assert!(matches!(e, Error::Io { .. }));
        assert!(!e.is_not_found());
    }
}
