//! The documents `/search` ranks: an embedding matrix and the id of each row.

mod ids;
mod npy;
mod text;

use std::path::Path;

use embedforge::ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::model::ServedModel;
use crate::startup_error::StartupError;

/// How hits name corpus rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusIds {
    /// A text corpus: row `i` is line `i` (0-based), named by the integer `i`, like
    /// sentence-transformers' `corpus_id`.
    LineNumbers,
    /// Rows named by the lines of an ids file.
    Names(Vec<String>),
}

/// The id of one hit in a `/search` answer: an integer line number or a string id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HitId<'a> {
    /// Line number in the text corpus.
    Line(usize),
    /// Id from the ids file.
    Name(&'a str),
}

/// A searchable corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    embeddings: Array2<f32>,
    ids: CorpusIds,
}

impl Corpus {
    /// Reads a text file (one document per line) and embeds every line with `model`.
    pub fn from_text_file(path: &Path, model: &ServedModel) -> Result<Self, StartupError> {
        let documents = text::read_lines(path).map_err(|message| StartupError::Corpus {
            flag: "corpus",
            path: path.to_path_buf(),
            message,
        })?;
        let embeddings = model
            .embed(&documents, false)
            .map_err(|e| StartupError::Corpus {
                flag: "corpus",
                path: path.to_path_buf(),
                message: format!("cannot embed the documents: {e}"),
            })?;
        Ok(Self {
            embeddings,
            ids: CorpusIds::LineNumbers,
        })
    }

    /// Reads a float32 `.npy` matrix whose rows are `dim` wide and the ids file naming its rows.
    pub fn from_npy(
        embeddings_path: &Path,
        ids_path: &Path,
        dim: usize,
    ) -> Result<Self, StartupError> {
        let corpus_error = |flag, path: &Path, message| StartupError::Corpus {
            flag,
            path: path.to_path_buf(),
            message,
        };
        let embeddings = npy::read_matrix(embeddings_path, dim)
            .map_err(|m| corpus_error("embeddings", embeddings_path, m))?;
        let names = ids::read_ids(ids_path, embeddings.nrows())
            .map_err(|m| corpus_error("ids", ids_path, m))?;
        Ok(Self {
            embeddings,
            ids: CorpusIds::Names(names),
        })
    }

    /// A corpus from parts; fails unless there is one name per row (for [`CorpusIds::Names`]).
    pub fn new(embeddings: Array2<f32>, ids: CorpusIds) -> Result<Self, String> {
        if let CorpusIds::Names(names) = &ids {
            if names.len() != embeddings.nrows() {
                return Err(format!(
                    "got {} ids for {} embedding rows, expected one id per row",
                    names.len(),
                    embeddings.nrows()
                ));
            }
        }
        Ok(Self { embeddings, ids })
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.embeddings.nrows()
    }

    /// Whether there are no documents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document embeddings, one row per document.
    pub fn embeddings(&self) -> ArrayView2<'_, f32> {
        self.embeddings.view()
    }

    /// The id that names row `row` in answers.
    pub fn id(&self, row: usize) -> HitId<'_> {
        match &self.ids {
            CorpusIds::LineNumbers => HitId::Line(row),
            CorpusIds::Names(names) => HitId::Name(&names[row]),
        }
    }
}
