//! Retrieval metrics over ranked result lists.

use std::collections::BTreeMap;

use pyo3::prelude::*;

use crate::convert::detached;
use crate::errors::invalid_argument;

/// Per-query id lists: a sequence of sequences of non-negative ints.
fn id_lists(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<Vec<u64>>> {
    obj.extract().map_err(|_| {
        invalid_argument(
            name,
            "an object that is not a sequence of sequences of non-negative ints",
            "one list of non-negative int ids per query",
        )
    })
}

/// Cutoffs: a sequence of non-negative ints.
fn cutoffs(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    obj.extract().map_err(|_| {
        invalid_argument(
            name,
            "an object that is not a sequence of non-negative ints",
            "a list of positive ints",
        )
    })
}

/// Accuracy, precision, recall, MRR, NDCG and MAP at the given cutoffs, averaged over queries.
#[pyfunction]
#[pyo3(signature = (ranked, relevant, *, accuracy_at_k, precision_recall_at_k, mrr_at_k, ndcg_at_k, map_at_k))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn retrieval_metrics(
    py: Python<'_>,
    ranked: &Bound<'_, PyAny>,
    relevant: &Bound<'_, PyAny>,
    accuracy_at_k: &Bound<'_, PyAny>,
    precision_recall_at_k: &Bound<'_, PyAny>,
    mrr_at_k: &Bound<'_, PyAny>,
    ndcg_at_k: &Bound<'_, PyAny>,
    map_at_k: &Bound<'_, PyAny>,
) -> PyResult<BTreeMap<&'static str, BTreeMap<usize, f64>>> {
    let ranked = id_lists(ranked, "ranked")?;
    let relevant = id_lists(relevant, "relevant")?;
    let ks = embedforge::RetrievalCutoffs {
        accuracy: cutoffs(accuracy_at_k, "accuracy_at_k")?,
        precision_recall: cutoffs(precision_recall_at_k, "precision_recall_at_k")?,
        mrr: cutoffs(mrr_at_k, "mrr_at_k")?,
        ndcg: cutoffs(ndcg_at_k, "ndcg_at_k")?,
        map: cutoffs(map_at_k, "map_at_k")?,
    };
    let m = detached(py, || {
        embedforge::retrieval_metrics(&ranked, &relevant, &ks)
    })?;
    let to_map = |v: Vec<(usize, f64)>| v.into_iter().collect::<BTreeMap<_, _>>();
    Ok(BTreeMap::from([
        ("accuracy@k", to_map(m.accuracy)),
        ("precision@k", to_map(m.precision)),
        ("recall@k", to_map(m.recall)),
        ("mrr@k", to_map(m.mrr)),
        ("ndcg@k", to_map(m.ndcg)),
        ("map@k", to_map(m.map)),
    ]))
}
