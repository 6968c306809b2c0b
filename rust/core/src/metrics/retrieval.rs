//! Accuracy, precision, recall, MRR, NDCG and MAP at cutoffs over ranked result lists.

use crate::error::{Error, Result};
use crate::parallel;

/// The cutoffs `k` to report each metric at; the lists may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetrievalCutoffs {
    /// Cutoffs for accuracy@k (share of queries with a relevant hit in the top k).
    pub accuracy: Vec<usize>,
    /// Cutoffs for precision@k and recall@k.
    pub precision_recall: Vec<usize>,
    /// Cutoffs for MRR@k.
    pub mrr: Vec<usize>,
    /// Cutoffs for NDCG@k.
    pub ndcg: Vec<usize>,
    /// Cutoffs for MAP@k.
    pub map: Vec<usize>,
}

/// Query-averaged metrics, each as `(k, value)` pairs in the order of the requested cutoffs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetrievalMetrics {
    /// accuracy@k.
    pub accuracy: Vec<(usize, f64)>,
    /// precision@k.
    pub precision: Vec<(usize, f64)>,
    /// recall@k.
    pub recall: Vec<(usize, f64)>,
    /// MRR@k.
    pub mrr: Vec<(usize, f64)>,
    /// NDCG@k.
    pub ndcg: Vec<(usize, f64)>,
    /// MAP@k.
    pub map: Vec<(usize, f64)>,
}

/// Scores ranked retrieval results against relevance judgements.
///
/// `ranked[q]` lists the ids retrieved for query `q`, best first (it may be shorter than a
/// cutoff: missing ranks count as misses); `relevant[q]` holds the ids relevant to it
/// (duplicates are ignored). Relevance is binary. Definitions, per query, then averaged:
///
/// - accuracy@k: 1 if any of the top k is relevant;
/// - precision@k: relevant hits in the top k divided by k; recall@k: divided by the number
///   of relevant ids;
/// - MRR@k: 1 / rank of the first relevant hit within the top k, else 0;
/// - NDCG@k: DCG of the top k (gain 1 / log2(rank + 1)) over the DCG of `min(k, #relevant)`
///   relevant ids ranked first;
/// - MAP@k: the sum of precision at each relevant hit within the top k, divided by
///   `min(k, #relevant)`.
///
/// Queries are scored in parallel. Errors if the two lists differ in length, if there are no
/// queries, if a query has no relevant ids, or if a cutoff is 0.
pub fn retrieval_metrics(
    ranked: &[Vec<u64>],
    relevant: &[Vec<u64>],
    cutoffs: &RetrievalCutoffs,
) -> Result<RetrievalMetrics> {
    if ranked.len() != relevant.len() {
        return Err(Error::invalid_argument(
            "relevant",
            format!("{} queries", relevant.len()),
            format!("one set of relevant ids per ranked list ({})", ranked.len()),
        ));
    }
    if ranked.is_empty() {
        return Err(Error::invalid_argument(
            "ranked",
            "no queries",
            "at least one query",
        ));
    }
    for (name, ks) in [
        ("accuracy_at_k", &cutoffs.accuracy),
        ("precision_recall_at_k", &cutoffs.precision_recall),
        ("mrr_at_k", &cutoffs.mrr),
        ("ndcg_at_k", &cutoffs.ndcg),
        ("map_at_k", &cutoffs.map),
    ] {
        if ks.contains(&0) {
            return Err(Error::invalid_argument(
                name,
                format!("{ks:?}"),
                "cutoffs of at least 1",
            ));
        }
    }
    if let Some(q) = relevant.iter().position(Vec::is_empty) {
        return Err(Error::invalid_argument(
            format!("relevant[{q}]"),
            "an empty set",
            "at least one relevant id per query",
        ));
    }

    let queries: Vec<usize> = (0..ranked.len()).collect();
    let per_query: Vec<Vec<f64>> = parallel::try_map(&queries, |&q| {
        Ok::<_, Error>(score_query(&ranked[q], &relevant[q], cutoffs))
    })?;

    // Sum in query order so the result does not depend on the thread count.
    let width = per_query[0].len();
    let mut totals = vec![0.0f64; width];
    for row in &per_query {
        for (t, v) in totals.iter_mut().zip(row) {
            *t += v;
        }
    }
    let n = ranked.len() as f64;
    let mut means = totals.into_iter().map(|t| t / n);
    let mut take = |ks: &[usize]| -> Vec<(usize, f64)> {
        ks.iter()
            .map(|&k| (k, means.next().unwrap_or(f64::NAN)))
            .collect()
    };
    let accuracy = take(&cutoffs.accuracy);
    let mut precision = Vec::with_capacity(cutoffs.precision_recall.len());
    let mut recall = Vec::with_capacity(cutoffs.precision_recall.len());
    for &k in &cutoffs.precision_recall {
        let pr = take(&[k, k]);
        precision.push(pr[0]);
        recall.push(pr[1]);
    }
    let mrr = take(&cutoffs.mrr);
    let ndcg = take(&cutoffs.ndcg);
    let map = take(&cutoffs.map);
    Ok(RetrievalMetrics {
        accuracy,
        precision,
        recall,
        mrr,
        ndcg,
        map,
    })
}

/// One query's metric values, flattened in the order [`retrieval_metrics`] unpacks them.
fn score_query(ranked: &[u64], relevant: &[u64], cutoffs: &RetrievalCutoffs) -> Vec<f64> {
    let mut relevant = relevant.to_vec();
    relevant.sort_unstable();
    relevant.dedup();
    let n_relevant = relevant.len();
    let max_k = [
        &cutoffs.accuracy,
        &cutoffs.precision_recall,
        &cutoffs.mrr,
        &cutoffs.ndcg,
        &cutoffs.map,
    ]
    .iter()
    .flat_map(|ks| ks.iter().copied())
    .max()
    .unwrap_or(0);
    let hits: Vec<bool> = ranked
        .iter()
        .take(max_k)
        .map(|id| relevant.binary_search(id).is_ok())
        .collect();
    let top = |k: usize| &hits[..k.min(hits.len())];
    let discount = |rank0: usize| 1.0 / ((rank0 + 2) as f64).log2();

    let mut out = Vec::new();
    for &k in &cutoffs.accuracy {
        out.push(if top(k).contains(&true) { 1.0 } else { 0.0 });
    }
    for &k in &cutoffs.precision_recall {
        let correct = top(k).iter().filter(|&&h| h).count() as f64;
        out.push(correct / k as f64);
        out.push(correct / n_relevant as f64);
    }
    for &k in &cutoffs.mrr {
        out.push(
            top(k)
                .iter()
                .position(|&h| h)
                .map_or(0.0, |r| 1.0 / (r + 1) as f64),
        );
    }
    for &k in &cutoffs.ndcg {
        let dcg: f64 = top(k)
            .iter()
            .enumerate()
            .filter(|(_, &h)| h)
            .map(|(r, _)| discount(r))
            .sum();
        let ideal: f64 = (0..k.min(n_relevant)).map(discount).sum();
        out.push(dcg / ideal);
    }
    for &k in &cutoffs.map {
        let mut correct = 0usize;
        let mut sum_precisions = 0.0;
        for (r, &h) in top(k).iter().enumerate() {
            if h {
                correct += 1;
                sum_precisions += correct as f64 / (r + 1) as f64;
            }
        }
        out.push(sum_precisions / k.min(n_relevant) as f64);
    }
    out
}
