//! Retrieval metrics against hand-computed values.

use embedforge::{retrieval_metrics, RetrievalCutoffs};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

fn cutoffs(ks: &[usize]) -> RetrievalCutoffs {
    RetrievalCutoffs {
        accuracy: ks.to_vec(),
        precision_recall: ks.to_vec(),
        mrr: ks.to_vec(),
        ndcg: ks.to_vec(),
        map: ks.to_vec(),
    }
}

#[test]
fn two_queries_by_hand() {
    // q0: relevant {2, 5}; ranking 7, 2, 9, 5 -> hits at ranks 2 and 4.
    // q1: relevant {1}; ranking 3, 4 (shorter than k=3) -> no hit.
    let ranked = vec![vec![7, 2, 9, 5], vec![3, 4]];
    let relevant = vec![vec![5, 2], vec![1]];
    let m = retrieval_metrics(&ranked, &relevant, &cutoffs(&[1, 3])).unwrap();
    let l2 = |x: f64| x.log2();

    assert_eq!(m.accuracy, vec![(1, 0.0), (3, 0.5)]);
    close(m.precision[0].1, 0.0);
    close(m.precision[1].1, (1.0 / 3.0) / 2.0);
    close(m.recall[1].1, 0.5 / 2.0);
    close(m.mrr[1].1, 0.5 / 2.0);
    // NDCG@3 q0: dcg = 1/log2(3); ideal over min(3, 2) = 2 docs: 1 + 1/log2(3).
    let ndcg_q0 = (1.0 / l2(3.0)) / (1.0 + 1.0 / l2(3.0));
    close(m.ndcg[1].1, ndcg_q0 / 2.0);
    close(m.ndcg[0].1, 0.0);
    // MAP@3 q0: precision at rank 2 = 1/2, divided by min(3, 2).
    close(m.map[1].1, (0.5 / 2.0) / 2.0);
}

#[test]
fn perfect_ranking_scores_one() {
    let ranked = vec![vec![1, 2, 3, 4]];
    let relevant = vec![vec![1, 2, 3]];
    let m = retrieval_metrics(&ranked, &relevant, &cutoffs(&[2, 10])).unwrap();
    close(m.ndcg[0].1, 1.0);
    close(m.ndcg[1].1, 1.0);
    close(m.map[0].1, 1.0);
    close(m.map[1].1, 1.0);
    close(m.mrr[0].1, 1.0);
    close(m.precision[0].1, 1.0);
    close(m.precision[1].1, 0.3);
    close(m.recall[0].1, 2.0 / 3.0);
    close(m.recall[1].1, 1.0);
}

#[test]
fn duplicate_relevant_ids_count_once() {
    let m = retrieval_metrics(&[vec![9, 4]], &[vec![4, 4]], &cutoffs(&[2])).unwrap();
    close(m.recall[0].1, 1.0);
    close(m.map[0].1, 0.5);
}

#[test]
fn many_queries_match_serial_order() {
    let ranked: Vec<Vec<u64>> = (0..500)
        .map(|q| (0..20).map(|i| (q * 7 + i) % 50).collect())
        .collect();
    let relevant: Vec<Vec<u64>> = (0..500).map(|q| vec![q % 50, (q * 3) % 50]).collect();
    let a = retrieval_metrics(&ranked, &relevant, &cutoffs(&[1, 5, 10, 100])).unwrap();
    let b = retrieval_metrics(&ranked, &relevant, &cutoffs(&[1, 5, 10, 100])).unwrap();
    assert_eq!(a, b);
    assert!(a.ndcg.iter().all(|(_, v)| (0.0..=1.0).contains(v)));
}

#[test]
fn bad_inputs_are_rejected() {
    let ks = cutoffs(&[1]);
    assert!(retrieval_metrics(&[vec![1]], &[], &ks).is_err());
    assert!(retrieval_metrics(&[], &[], &ks).is_err());
    assert!(retrieval_metrics(&[vec![1]], &[vec![]], &ks).is_err());
    let err = retrieval_metrics(&[vec![1]], &[vec![1]], &cutoffs(&[0])).unwrap_err();
    assert!(err.to_string().contains("accuracy_at_k"), "{err}");
}
