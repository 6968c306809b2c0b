//! The command line of `embedforge-serve`.

use std::path::PathBuf;

use clap::Parser;

use crate::limits::Limits;

/// Default for `--max-texts`: a generous batch for one HTTP request.
pub const DEFAULT_MAX_TEXTS: usize = 1024;
/// Default for `--max-body-bytes`: room for `DEFAULT_MAX_TEXTS` passages of about 2 KB each.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Default for `--max-top-k`: bounds the size of a `/search` answer.
pub const DEFAULT_MAX_TOP_K: usize = 1000;

/// Serve a static embedding model (and optionally a corpus to search) over HTTP.
#[derive(Debug, Clone, Parser)]
#[command(name = "embedforge-serve", version, about, long_about = None)]
pub struct Args {
    /// Model folder: a sentence-transformers StaticEmbedding (+ Normalize) folder, saved by
    /// sentence-transformers or embedforge, or a model2vec folder.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// Corpus for /search: a UTF-8 text file with one document per line, embedded at start.
    /// Hits name documents by their 0-based line number.
    #[arg(long, value_name = "FILE.txt", conflicts_with_all = ["embeddings", "ids"])]
    pub corpus: Option<PathBuf>,

    /// Corpus for /search as precomputed embeddings: a float32 .npy matrix [documents, dim].
    #[arg(long, value_name = "FILE.npy", requires = "ids")]
    pub embeddings: Option<PathBuf>,

    /// Ids of the rows of --embeddings: a UTF-8 text file, one id per line; hits name documents
    /// by these strings.
    #[arg(long, value_name = "FILE.txt", requires = "embeddings")]
    pub ids: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0: any free port; the log names the one chosen).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Most texts accepted in one request (for /similarity: queries and documents together).
    #[arg(long, default_value_t = DEFAULT_MAX_TEXTS, value_parser = positive)]
    pub max_texts: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES, value_parser = positive)]
    pub max_body_bytes: usize,

    /// Largest `top_k` accepted by /search.
    #[arg(long, default_value_t = DEFAULT_MAX_TOP_K, value_parser = positive)]
    pub max_top_k: usize,

    /// Threads for embedding and search (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl Args {
    /// The request limits the flags ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            max_texts: self.max_texts,
            max_body_bytes: self.max_body_bytes,
            max_top_k: self.max_top_k,
        }
    }
}

/// A limit of 0 would refuse every request, so it is rejected when the server starts.
fn positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("got 0, expected a positive integer".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("got {value:?}, expected a positive integer ({e})")),
    }
}
