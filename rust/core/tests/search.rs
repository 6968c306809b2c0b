//! `top_k` against a brute-force reference across shapes, k, score functions and block sizes.

use embedforge::ndarray::{Array2, ArrayView1};
use embedforge::{top_k, Error, ScoreFunction};

const ALL: [ScoreFunction; 4] = [
    ScoreFunction::Cosine,
    ScoreFunction::Dot,
    ScoreFunction::Euclidean,
    ScoreFunction::Manhattan,
];

/// Deterministic pseudo-random matrix in [-1, 1), rounded to a coarse grid when `coarse`
/// (which makes exact score ties common).
fn matrix(rows: usize, cols: usize, seed: u64, coarse: bool) -> Array2<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Array2::from_shape_fn((rows, cols), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        if coarse {
            (x * 2.0).round()
        } else {
            x
        }
    })
}

fn score(f: ScoreFunction, a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    match f {
        ScoreFunction::Cosine => dot / (na.max(1e-12) * nb.max(1e-12)),
        ScoreFunction::Dot => dot,
        ScoreFunction::Euclidean => -a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            .sqrt(),
        ScoreFunction::Manhattan => -a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
            .sum::<f64>(),
    }
}

/// Checks `top_k` against all scores computed in f64: scores match, the order is
/// non-increasing, and every returned id is as good as the k-th best (ids may differ only
/// within float-rounding ties).
fn check(queries: &Array2<f32>, corpus: &Array2<f32>, k: usize, f: ScoreFunction, block: usize) {
    let got = top_k(queries.view(), corpus.view(), k, f, block).unwrap();
    let kk = k.min(corpus.nrows());
    assert_eq!(got.indices.dim(), (queries.nrows(), kk));
    assert_eq!(got.scores.dim(), (queries.nrows(), kk));
    for (q, query) in queries.rows().into_iter().enumerate() {
        let mut all: Vec<(f64, usize)> = corpus
            .rows()
            .into_iter()
            .enumerate()
            .map(|(i, row)| (score(f, query, row), i))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let tol = 1e-4 * (1.0 + all.first().map_or(0.0, |x| x.0.abs()));
        let mut seen = std::collections::HashSet::new();
        for (j, &(expected, _)) in all.iter().enumerate().take(kk) {
            let id = got.indices[[q, j]];
            assert!(seen.insert(id), "duplicate id {id}");
            let s = f64::from(got.scores[[q, j]]);
            assert!(
                (s - score(f, query, corpus.row(id))).abs() < tol,
                "{f:?} score of {id}"
            );
            assert!(
                (s - expected).abs() < tol,
                "{f:?} q{q} rank {j}: {s} vs {expected}"
            );
            if j > 0 {
                let prev = got.scores[[q, j - 1]];
                assert!(prev >= got.scores[[q, j]]);
                if prev == got.scores[[q, j]] {
                    assert!(got.indices[[q, j - 1]] < id, "ties go to the lower index");
                }
            }
        }
    }
}

#[test]
fn matches_brute_force_across_shapes_and_blocks() {
    for &(nq, nc, d) in &[
        (1, 1, 1),
        (3, 10, 4),
        (7, 100, 16),
        (20, 257, 33),
        (600, 50, 8),
    ] {
        let queries = matrix(nq, d, 1 + nq as u64, false);
        let corpus = matrix(nc, d, 100 + nc as u64, false);
        for f in ALL {
            for &k in &[1, 5, nc + 3] {
                for &block in &[1, 7, 4096] {
                    check(&queries, &corpus, k, f, block);
                }
            }
        }
    }
}

#[test]
fn ties_resolve_to_lower_index_regardless_of_block_size() {
    let queries = matrix(9, 3, 5, true);
    let mut corpus = matrix(200, 3, 6, true);
    // Duplicate rows give exact ties under every score function.
    for i in 0..50 {
        let row = corpus.row(i).to_owned();
        corpus.row_mut(150 + i).assign(&row);
    }
    for f in ALL {
        let reference = top_k(queries.view(), corpus.view(), 30, f, 200).unwrap();
        for &block in &[1, 3, 17, 64] {
            let got = top_k(queries.view(), corpus.view(), 30, f, block).unwrap();
            assert_eq!(got, reference, "{f:?} block {block}");
        }
        check(&queries, &corpus, 30, f, 13);
    }
}

#[test]
fn empty_inputs_give_empty_results() {
    let q = matrix(4, 3, 1, false);
    let empty = Array2::<f32>::zeros((0, 3));
    let r = top_k(q.view(), empty.view(), 5, ScoreFunction::Cosine, 8).unwrap();
    assert_eq!(r.indices.dim(), (4, 0));
    let r = top_k(empty.view(), q.view(), 5, ScoreFunction::Dot, 8).unwrap(); // k clipped to 4 rows
    assert_eq!(r.indices.dim(), (0, 4));
    let r = top_k(q.view(), q.view(), 0, ScoreFunction::Dot, 8).unwrap();
    assert_eq!(r.scores.dim(), (4, 0));
}

#[test]
fn zero_vectors_score_zero_under_cosine() {
    let q = Array2::<f32>::zeros((1, 4));
    let c = matrix(5, 4, 2, false);
    let r = top_k(q.view(), c.view(), 5, ScoreFunction::Cosine, 2).unwrap();
    assert!(r.scores.iter().all(|&s| s == 0.0));
    assert_eq!(r.indices.row(0).to_vec(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn bad_arguments_are_named() {
    let q = matrix(2, 3, 1, false);
    let c = matrix(4, 5, 2, false);
    let err = top_k(q.view(), c.view(), 1, ScoreFunction::Dot, 8).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { name, .. } if name == "corpus"),
        "{err}"
    );

    let mut nan = matrix(4, 3, 2, false);
    nan[[2, 1]] = f32::NAN;
    let err = top_k(q.view(), nan.view(), 1, ScoreFunction::Dot, 8).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { name, .. } if name == "corpus"),
        "{err}"
    );
    let err = top_k(nan.view(), q.view(), 1, ScoreFunction::Dot, 8).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { name, .. } if name == "queries"),
        "{err}"
    );

    let err = top_k(q.view(), q.view(), 1, ScoreFunction::Dot, 0).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument { name, .. } if name == "block_size"));

    let err = "cosinus".parse::<ScoreFunction>().unwrap_err();
    assert!(err.to_string().contains("`score`"), "{err}");
    assert_eq!("dot".parse::<ScoreFunction>().unwrap(), ScoreFunction::Dot);
}

#[test]
fn non_contiguous_views_work() {
    let q = matrix(6, 8, 3, false);
    let c = matrix(40, 8, 4, false);
    let qt = q.t().to_owned();
    let ct = c.t().to_owned();
    for f in ALL {
        let a = top_k(q.view(), c.view(), 7, f, 9).unwrap();
        let b = top_k(qt.t(), ct.t(), 7, f, 9).unwrap();
        assert_eq!(a.indices, b.indices);
        for (x, y) in a.scores.iter().zip(b.scores.iter()) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
