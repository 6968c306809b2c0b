//! Ranking-quality metrics for retrieval evaluation.
//!
//! [`retrieval_metrics`] scores per-query ranked result lists against per-query sets of
//! relevant ids with the definitions sentence-transformers' `InformationRetrievalEvaluator`
//! uses: binary relevance, averages over queries.

mod retrieval;

pub use retrieval::{retrieval_metrics, RetrievalCutoffs, RetrievalMetrics};
