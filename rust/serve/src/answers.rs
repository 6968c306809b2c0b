//! The JSON answers of `/embed` and `/search`, encoded straight from the core's arrays.

use embedforge::ndarray::{ArrayView2, Axis};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use crate::corpus::{Corpus, HitId};
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::matrix_json::MatrixJson;

/// `{"embeddings": [[...], ...]}`: one row per input, in input order.
pub(crate) fn embeddings(rows: ArrayView2<'_, f32>) -> Result<JsonBody, ApiError> {
    #[derive(Serialize)]
    struct Answer<'a> {
        embeddings: MatrixJson<'a>,
    }
    JsonBody::encode(&Answer {
        embeddings: MatrixJson(rows),
    })
}

/// `{"results": [[{"id": ..., "score": ...}, ...], ...]}`: per query, best hit first, from
/// rows of corpus indices and their scores.
pub(crate) fn search_results(
    indices: ArrayView2<'_, usize>,
    scores: ArrayView2<'_, f32>,
    corpus: &Corpus,
) -> Result<JsonBody, ApiError> {
    #[derive(Serialize)]
    struct Answer<'a> {
        results: Results<'a>,
    }
    JsonBody::encode(&Answer {
        results: Results {
            indices,
            scores,
            corpus,
        },
    })
}

/// The hits of every query.
struct Results<'a> {
    indices: ArrayView2<'a, usize>,
    scores: ArrayView2<'a, f32>,
    corpus: &'a Corpus,
}

/// One hit: the document's id and its cosine similarity to the query.
#[derive(Serialize)]
struct Hit<'a> {
    id: HitId<'a>,
    score: f32,
}

impl Serialize for Results<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut queries = serializer.serialize_seq(Some(self.indices.nrows()))?;
        for (indices, scores) in self
            .indices
            .axis_iter(Axis(0))
            .zip(self.scores.axis_iter(Axis(0)))
        {
            let hits: Vec<Hit<'_>> = indices
                .iter()
                .zip(scores.iter())
                .map(|(&row, &score)| Hit {
                    id: self.corpus.id(row),
                    score,
                })
                .collect();
            queries.serialize_element(&hits)?;
        }
        queries.end()
    }
}
