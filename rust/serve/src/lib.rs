//! `embedforge-serve`: a static embedding model and an exact cosine search over HTTP.
//!
//! The binary (`src/main.rs`) only parses the command line ([`cli::Args`]), sets up logging and
//! waits for a signal; everything else lives here so that tests can run the service in-process:
//!
//! - [`model::ServedModel`]: a sentence-transformers `StaticEmbedding` (+ `Normalize`) folder or a
//!   model2vec folder, embedding exactly as `SentenceTransformer(folder).encode(texts)` does.
//! - [`corpus::Corpus`]: the documents `/search` ranks, embedded at start from a text file or
//!   read from a `.npy` matrix with an ids file.
//! - [`engine::Engine`] and [`batcher::Batcher`]: the embedding and search work, served in
//!   batches of whatever requests are waiting, on a thread of its own.
//! - [`routes::router`]: the HTTP API (`POST /embed`, `POST /search`, `POST /similarity`,
//!   `GET /health`), with [`limits::Limits`] on every request and JSON errors ([`error::ApiError`]).
//! - [`server::serve`]: runs the router on a listener until a shutdown future completes.

pub mod batcher;
pub mod cli;
pub mod corpus;
pub mod engine;
pub mod error;
pub mod limits;
pub mod logging;
pub mod model;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod state;

mod answers;
mod blocking;
mod body;
mod json_body;
mod matrix_json;
mod positive_integer;
mod request_log;
mod startup_error;

pub use cli::Args;
pub use error::ApiError;
pub use limits::Limits;
pub use startup_error::StartupError;
pub use state::AppState;
