//! Mean pooling of embedding rows per bag, as `torch.nn.EmbeddingBag(mode="mean")`.

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::parallel;

/// The `eps` of `torch.nn.functional.normalize`: vectors shorter than this are divided by it.
pub const NORMALIZE_EPS: f32 = 1e-12;

/// An integer type usable as a token id (a row index into the embedding matrix).
pub trait TokenId: Copy + Send + Sync + std::fmt::Display {
    /// The row index, or `None` if the value cannot be one (negative).
    fn to_index(self) -> Option<usize>;
}

macro_rules! token_id {
    ($($t:ty),*) => {$(
        impl TokenId for $t {
            fn to_index(self) -> Option<usize> {
                usize::try_from(self).ok()
            }
        }
    )*};
}
token_id!(i32, i64, u32, u64, usize);

/// Mean of the `weights` rows listed in `ids`, one output row per bag.
///
/// Bag `b` holds `ids[offsets[b]..offsets[b + 1]]` (the last bag runs to the end of `ids`).
/// Rows are summed in `f32` in token order and divided by the bag's size; an empty bag gives
/// a zero row. With `normalize` each output row is divided by `max(‖row‖₂, 1e-12)`, as
/// `torch.nn.functional.normalize`. Invalid ids or offsets are reported, never clamped.
pub fn embedding_bag_mean<I: TokenId>(
    weights: ArrayView2<'_, f32>,
    ids: &[I],
    offsets: &[i64],
    normalize: bool,
) -> Result<Array2<f32>> {
    let (rows, dim) = weights.dim();
    let ranges = bag_ranges(offsets, ids.len())?;
    let indices = row_indices(ids, rows)?;

    let weights = weights.as_standard_layout();
    let table = weights.as_slice().ok_or_else(|| {
        Error::invalid_argument("weights", "a strided array", "a contiguous array")
    })?;

    let mut out = vec![0f32; ranges.len() * dim];
    parallel::for_each_chunk_mut(&mut out, dim, |bag, row| {
        let (start, end) = ranges[bag];
        if start == end {
            return;
        }
        for &id in &indices[start..end] {
            let src = &table[id * dim..(id + 1) * dim];
            row.iter_mut().zip(src).for_each(|(o, &w)| *o += w);
        }
        let count = (end - start) as f32;
        row.iter_mut().for_each(|o| *o /= count);
        if normalize {
            l2_normalize(row);
        }
    });
    Array2::from_shape_vec((ranges.len(), dim), out)
        .map_err(|e| Error::invalid_argument("weights", e, "a 2-D array"))
}

/// Divides `row` by `max(‖row‖₂, 1e-12)` in place.
pub fn l2_normalize(row: &mut [f32]) {
    let norm = row
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt() as f32;
    let denom = norm.max(NORMALIZE_EPS);
    row.iter_mut().for_each(|x| *x /= denom);
}

/// Checks `offsets` (first 0, non-decreasing, within `ids`) and turns them into
/// `[start, end)` ranges.
fn bag_ranges(offsets: &[i64], num_ids: usize) -> Result<Vec<(usize, usize)>> {
    if offsets.is_empty() {
        if num_ids > 0 {
            return Err(Error::invalid_argument(
                "offsets",
                format!("an empty array with {num_ids} ids"),
                "one start offset per bag, the first being 0",
            ));
        }
        return Ok(Vec::new());
    }
    if offsets[0] != 0 {
        return Err(Error::invalid_argument("offsets[0]", offsets[0], "0"));
    }
    let mut starts = Vec::with_capacity(offsets.len());
    for (i, &offset) in offsets.iter().enumerate() {
        let previous = starts.last().copied().unwrap_or(0);
        match usize::try_from(offset) {
            Ok(start) if start >= previous && start <= num_ids => starts.push(start),
            _ => {
                let expected = if i == 0 {
                    "0".to_owned()
                } else {
                    format!(
                        "between offsets[{}] = {previous} and len(ids) = {num_ids}",
                        i - 1
                    )
                };
                return Err(Error::invalid_argument(
                    format!("offsets[{i}]"),
                    offset,
                    expected,
                ));
            }
        }
    }
    let ends = starts.iter().skip(1).copied().chain([num_ids]);
    Ok(starts.iter().copied().zip(ends).collect())
}

/// Converts ids to row indices, checking each is in `0..rows`.
fn row_indices<I: TokenId>(ids: &[I], rows: usize) -> Result<Vec<usize>> {
    ids.iter()
        .enumerate()
        .map(|(j, &id)| match id.to_index() {
            Some(index) if index < rows => Ok(index),
            _ => Err(Error::invalid_argument(
                format!("ids[{j}]"),
                id,
                format!("a row index in 0..{rows} (the embedding matrix has {rows} rows)"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn mean_per_bag_with_empty_bag() {
        let w = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let out = embedding_bag_mean(w.view(), &[0i64, 2, 1, 1], &[0, 2, 2], false).unwrap();
        assert_eq!(out, array![[3.0, 4.0], [0.0, 0.0], [3.0, 4.0]]);
    }

    #[test]
    fn normalized_rows_have_unit_length_and_zero_stays_zero() {
        let w = array![[3.0f32, 4.0], [0.0, 0.0]];
        let out = embedding_bag_mean(w.view(), &[0u32, 1], &[0, 1], true).unwrap();
        assert_eq!(out, array![[0.6, 0.8], [0.0, 0.0]]);
    }

    #[test]
    fn rejects_bad_ids_and_offsets() {
        let w = array![[1.0f32], [2.0]];
        let err = embedding_bag_mean(w.view(), &[0i64, 2], &[0], false).unwrap_err();
        assert!(err.to_string().contains("`ids[1]`: got 2"), "{err}");
        let err = embedding_bag_mean(w.view(), &[-1i64], &[0], false).unwrap_err();
        assert!(err.to_string().contains("got -1"), "{err}");
        let err = embedding_bag_mean(w.view(), &[0i64], &[1], false).unwrap_err();
        assert!(
            err.to_string().contains("`offsets[0]`: got 1, expected 0"),
            "{err}"
        );
        let err = embedding_bag_mean(w.view(), &[0i64, 1], &[0, 2, 1], false).unwrap_err();
        assert!(err.to_string().contains("`offsets[2]`"), "{err}");
        let err = embedding_bag_mean(w.view(), &[0i64], &[0, 5], false).unwrap_err();
        assert!(err.to_string().contains("len(ids) = 1"), "{err}");
        let err = embedding_bag_mean(w.view(), &[0i64], &[], false).unwrap_err();
        assert!(err.to_string().contains("`offsets`"), "{err}");
    }

    #[test]
    fn no_bags_gives_empty_matrix() {
        let w = array![[1.0f32, 2.0]];
        let out = embedding_bag_mean::<i64>(w.view(), &[], &[], false).unwrap();
        assert_eq!(out.dim(), (0, 2));
    }

    #[test]
    fn strided_weights_are_accepted() {
        let w = array![[1.0f32, 10.0], [2.0, 20.0]];
        let t = w.t(); // rows of t: [1, 2] and [10, 20]
        let out = embedding_bag_mean(t, &[0i64, 1], &[0], false).unwrap();
        assert_eq!(out, array![[5.5, 11.0]]);
    }
}
