//! One pass of the no-duplicates rule: greedy batches over a fixed order, conflicts wait.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// Batches as one flat list of row indices: batch `b` is `rows[bounds[b]..bounds[b + 1]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batches {
    /// Row indices of all batches, batch after batch.
    pub rows: Vec<i64>,
    /// `batches + 1` positions into `rows`, starting with 0.
    pub bounds: Vec<i64>,
}

impl Batches {
    /// Number of batches.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Whether there are no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch `b` as a slice of row indices.
    pub fn batch(&self, b: usize) -> &[i64] {
        &self.rows[self.bounds[b] as usize..self.bounds[b + 1] as usize]
    }
}

const END: usize = usize::MAX;

/// Walks the rows in `order` and cuts them into batches in which no value id occurs twice.
///
/// Each batch starts at the first row not yet used and takes, in order, every row none of whose
/// ids (`value_ids[row, ..]`) is already in the batch, until it holds `batch_size` rows; rows
/// that conflict stay where they are for the following batches. A batch that cannot be filled
/// (the rest of the rows all conflict) is kept unless `drop_last`, and the walk goes on with the
/// rows left over, until every row was placed or dropped. This is sentence-transformers'
/// `NoDuplicatesBatchSampler` pass, so the same order gives the same batches.
pub fn no_duplicates_pass(
    value_ids: ArrayView2<'_, u32>,
    order: &[i64],
    batch_size: usize,
    drop_last: bool,
) -> Result<Batches> {
    let num_rows = value_ids.nrows();
    if batch_size == 0 {
        return Err(Error::invalid_argument(
            "batch_size",
            0,
            "a positive integer",
        ));
    }
    let rows_of_order = check_order(order, num_rows)?;
    let width = value_ids.ncols();
    // The walk visits positions nearly in order: gather the ids in that order once, so the
    // hot loop reads them sequentially instead of jumping around the table.
    let mut ids = Vec::with_capacity(num_rows * width);
    for &row in &rows_of_order {
        ids.extend(value_ids.row(row).iter().copied());
    }
    let num_values = ids.iter().map(|&v| v as usize + 1).max().unwrap_or(0);
    if u32::try_from(num_rows).is_err() {
        return Err(Error::invalid_argument(
            "value_ids",
            format!("{num_rows} rows"),
            format!("at most {} rows", u32::MAX),
        ));
    }

    // stamp[v] == batch number <=> value v is already in the current batch. There are at most
    // num_rows batches, so u32 numbers never reach the u32::MAX "never" mark.
    let mut stamp = vec![u32::MAX; num_values];
    // A singly linked list over positions of `order` that are not placed yet.
    let mut next: Vec<usize> = (1..=order.len()).collect();
    if let Some(last) = next.last_mut() {
        *last = END;
    }
    let mut head = if order.is_empty() { END } else { 0 };

    let mut batches = Batches {
        rows: Vec::with_capacity(order.len()),
        bounds: vec![0],
    };
    let mut batch_number = 0u32;
    while head != END {
        let batch_start = batches.rows.len();
        let mut position = head;
        let mut previous = END;
        let mut full = false;
        while position != END {
            let following = next[position];
            let row = rows_of_order[position];
            let values = &ids[position * width..(position + 1) * width];
            if values.iter().any(|&v| stamp[v as usize] == batch_number) {
                previous = position;
                position = following;
                continue;
            }
            batches.rows.push(row as i64);
            if previous == END {
                head = following;
            } else {
                next[previous] = following;
            }
            if batches.rows.len() - batch_start == batch_size {
                full = true;
                break;
            }
            for &v in values {
                stamp[v as usize] = batch_number;
            }
            position = following;
        }
        if full || !drop_last {
            batches.bounds.push(batches.rows.len() as i64);
        } else {
            batches.rows.truncate(batch_start);
        }
        batch_number += 1;
    }
    Ok(batches)
}

/// `order` as row numbers, checked to be a permutation of `0..num_rows`.
fn check_order(order: &[i64], num_rows: usize) -> Result<Vec<usize>> {
    if order.len() != num_rows {
        return Err(Error::invalid_argument(
            "order",
            format!("{} positions", order.len()),
            format!("a permutation of the {num_rows} rows"),
        ));
    }
    let mut seen = vec![false; num_rows];
    let mut rows = Vec::with_capacity(num_rows);
    for &index in order {
        let row = usize::try_from(index).ok().filter(|&r| r < num_rows);
        let Some(row) = row.filter(|&r| !seen[r]) else {
            return Err(Error::invalid_argument(
                "order",
                format!("row {index}"),
                format!("each row of 0..{num_rows} exactly once"),
            ));
        };
        seen[row] = true;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn pass(ids: &Array2<u32>, order: &[i64], batch_size: usize, drop_last: bool) -> Vec<Vec<i64>> {
        let batches = no_duplicates_pass(ids.view(), order, batch_size, drop_last).unwrap();
        (0..batches.len())
            .map(|b| batches.batch(b).to_vec())
            .collect()
    }

    #[test]
    fn conflicting_rows_wait_for_a_later_batch() {
        // Rows 0 and 1 share value 7; row 2 shares value 9 with row 3 across columns.
        let ids = array![[7, 1], [7, 2], [3, 9], [9, 4], [5, 6]];
        assert_eq!(
            pass(&ids, &[0, 1, 2, 3, 4], 2, false),
            vec![vec![0, 2], vec![1, 3], vec![4]]
        );
        assert_eq!(
            pass(&ids, &[0, 1, 2, 3, 4], 2, true),
            vec![vec![0, 2], vec![1, 3]]
        );
        assert_eq!(
            pass(&ids, &[0, 1, 3, 2, 4], 3, false),
            vec![vec![0, 3, 4], vec![1, 2]]
        );
    }

    #[test]
    fn a_row_may_repeat_its_own_value() {
        let ids = array![[1, 1], [2, 2], [1, 3]];
        assert_eq!(pass(&ids, &[0, 1, 2], 3, false), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn unfillable_batches_are_dropped_and_the_walk_goes_on() {
        // Every row holds value 0: one row per batch; with drop_last nothing is kept.
        let ids = array![[0], [0], [0]];
        assert_eq!(
            pass(&ids, &[2, 0, 1], 2, false),
            vec![vec![2], vec![0], vec![1]]
        );
        assert!(pass(&ids, &[2, 0, 1], 2, true).is_empty());
    }

    #[test]
    fn bad_orders_and_sizes_are_rejected() {
        let ids = array![[0], [1]];
        assert!(no_duplicates_pass(ids.view(), &[0], 1, false).is_err());
        assert!(no_duplicates_pass(ids.view(), &[0, 0], 1, false).is_err());
        assert!(no_duplicates_pass(ids.view(), &[0, 2], 1, false).is_err());
        assert!(no_duplicates_pass(ids.view(), &[1, 0], 0, false).is_err());
        let empty = Array2::<u32>::zeros((0, 2));
        assert!(no_duplicates_pass(empty.view(), &[], 4, false)
            .unwrap()
            .is_empty());
    }
}
