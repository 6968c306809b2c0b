//! Why the server could not start: the model, the corpus, or the listening address.

use std::path::PathBuf;

/// A failure before the first request; the message names the flag and the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The model folder could not be loaded by the core library.
    #[error("--model {}: {source}", path.display())]
    Model {
        /// The folder given to `--model`.
        path: PathBuf,
        /// What the core library reported.
        #[source]
        source: embedforge::Error,
    },

    /// The model folder loads, but serving it would not give sentence-transformers' embeddings.
    #[error("--model {}: {message}", path.display())]
    Unsupported {
        /// The folder given to `--model`.
        path: PathBuf,
        /// What is in the way.
        message: String,
    },

    /// A corpus file (`--corpus`, `--embeddings` or `--ids`) is missing or malformed.
    #[error("--{flag} {}: {message}", path.display())]
    Corpus {
        /// The flag naming the file, without dashes.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// `host:port` as given.
        address: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}
