//! Negative Euclidean and Manhattan distances, summed from element differences.
//!
//! Distances are not expanded as `|q|^2 + |c|^2 - 2 q.c`: that cancels catastrophically for
//! near-identical rows (a row against itself would score about -1e-3 instead of 0), so these
//! two scores take a direct loop instead of the panel kernel.

use std::ops::Range;

use ndarray::{s, ArrayView2};

use super::scan::offer_row;
use super::select::Collector;
use super::{check_rows, NanCheck};
use crate::error::Result;

/// Lanes summed independently so the compiler can vectorise the reductions.
const LANES: usize = 8;

/// Scores `queries` rows `q_range` (standard layout) against corpus rows `c_range`.
pub(crate) fn scan_distance(
    queries: ArrayView2<'_, f32>,
    corpus: ArrayView2<'_, f32>,
    manhattan: bool,
    block_rows: usize,
    q_range: Range<usize>,
    c_range: Range<usize>,
    collectors: &mut [Collector<f32>],
) -> Result<()> {
    let mut scores = Vec::with_capacity(block_rows);
    let mut start = c_range.start;
    while start < c_range.end {
        let end = (start + block_rows).min(c_range.end);
        let block = corpus.slice(s![start..end, ..]);
        check_rows(block, start, NanCheck::Corpus)?;
        let block = block.as_standard_layout();
        for (q, collector) in q_range.clone().zip(collectors.iter_mut()) {
            let query = queries.row(q);
            let query = query.as_slice().expect("queries are in standard layout");
            scores.clear();
            scores.extend(block.rows().into_iter().map(|row| {
                let row = row.as_slice().expect("blocks are in standard layout");
                if manhattan {
                    -l1_distance(query, row)
                } else {
                    -l2_squared(query, row).sqrt()
                }
            }));
            offer_row(collector, &scores, start);
        }
        start = end;
    }
    Ok(())
}

fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn l1_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y).abs())
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += (x[i] - y[i]).abs();
        }
    }
    acc.iter().sum::<f32>() + tail
}
