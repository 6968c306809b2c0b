//! The work behind `/embed` and `/search`: the model, the corpus, and the core's calls on them.

use embedforge::ndarray::Array2;
use embedforge::{top_k, ScoreFunction, TopK, DEFAULT_SEARCH_BLOCK};

use crate::corpus::Corpus;
use crate::error::ApiError;
use crate::model::ServedModel;

/// The model and the (optional) corpus; read-only, shared by the batch worker and the handlers.
#[derive(Debug)]
pub struct Engine {
    model: ServedModel,
    corpus: Option<Corpus>,
}

/// What `/search` answers without a corpus.
pub(crate) const NO_CORPUS: &str = "no corpus to search: start the server with --corpus \
                                    FILE.txt or with --embeddings FILE.npy --ids FILE.txt";

impl Engine {
    /// An engine over `model` and `corpus`.
    pub fn new(model: ServedModel, corpus: Option<Corpus>) -> Self {
        Self { model, corpus }
    }

    /// The model.
    pub fn model(&self) -> &ServedModel {
        &self.model
    }

    /// The corpus, if one was loaded.
    pub fn corpus(&self) -> Option<&Corpus> {
        self.corpus.as_ref()
    }

    /// Embeddings of `texts` (see [`ServedModel::embed`]); a failure names `field`.
    pub fn embed(
        &self,
        texts: &[String],
        normalize: bool,
        field: &str,
    ) -> Result<Array2<f32>, ApiError> {
        if texts.is_empty() {
            return Ok(Array2::zeros((0, self.model.dim())));
        }
        self.model
            .embed(texts, normalize)
            .map_err(|e| ApiError::from_core(&format!("cannot embed `{field}`"), e))
    }

    /// The `k` best documents of each query by cosine similarity, best first.
    pub fn search(&self, queries: &[String], k: usize) -> Result<TopK, ApiError> {
        let corpus = self.corpus_or_404()?;
        let embeddings = self.embed(queries, false, "queries")?;
        top_k(
            embeddings.view(),
            corpus.embeddings(),
            k,
            ScoreFunction::Cosine,
            DEFAULT_SEARCH_BLOCK,
        )
        .map_err(|e| ApiError::from_core("search failed", e))
    }

    /// The corpus, or the 404 that says how to load one.
    pub(crate) fn corpus_or_404(&self) -> Result<&Corpus, ApiError> {
        self.corpus
            .as_ref()
            .ok_or_else(|| ApiError::not_found(NO_CORPUS))
    }
}
