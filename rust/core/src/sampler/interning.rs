//! Interning rows' texts into dense ids, so that "same value" becomes "same integer".

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use ndarray::Array2;

use crate::error::{Error, Result};

/// One chunk of a text column in Arrow's layout: row `i` is `data[offsets[i]..offsets[i + 1]]`.
#[derive(Clone, Copy, Debug)]
pub struct TextChunk<'a> {
    /// `rows + 1` byte offsets into `data`, non-decreasing.
    pub offsets: &'a [i64],
    /// The concatenated UTF-8 bytes of the chunk's rows.
    pub data: &'a [u8],
}

impl TextChunk<'_> {
    /// Number of rows in the chunk.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A word-at-a-time multiplicative hasher (the rustc "Fx" scheme): the keys are texts chosen by
/// the user's dataset, not by an adversary, and SipHash would cost about twice as much here.
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("8-byte chunk")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The table picks buckets by the low bits, which a plain product leaves depending on the
        // low bytes of the last word only: fold the high half of a widening multiply back in.
        let wide = u128::from(self.hash) * u128::from(FX_SEED);
        (wide as u64) ^ ((wide >> 64) as u64)
    }
}

/// Gives every row of every column the id of its text: `ids[row, column]`, where equal texts,
/// in any columns, get equal ids (numbered from 0 in order of first appearance, column by column).
///
/// `columns[c]` holds column `c` as consecutive chunks that together have `num_rows` rows.
pub fn intern_text_columns(columns: &[Vec<TextChunk<'_>>], num_rows: usize) -> Result<Array2<u32>> {
    let width = columns.len();
    for (c, chunks) in columns.iter().enumerate() {
        check_column(c, chunks, num_rows)?;
    }
    let mut ids = Array2::<u32>::zeros((num_rows, width));
    let mut table: HashMap<&[u8], u32, BuildHasherDefault<FxHasher>> =
        HashMap::with_capacity_and_hasher(num_rows.min(1 << 24), Default::default());
    for (c, chunks) in columns.iter().enumerate() {
        let mut row = 0usize;
        for chunk in chunks {
            for bounds in chunk.offsets.windows(2) {
                // check_column proved both offsets are in range and ordered.
                let text = &chunk.data[bounds[0] as usize..bounds[1] as usize];
                let next_id = table.len();
                let id = *table.entry(text).or_insert_with(|| next_id as u32);
                ids[[row, c]] = id;
                row += 1;
            }
        }
        if table.len() > u32::MAX as usize {
            return Err(Error::invalid_argument(
                "columns",
                format!("{} distinct values", table.len()),
                format!("at most {} distinct values", u32::MAX),
            ));
        }
    }
    Ok(ids)
}

/// Rejects a column whose chunks do not add up to `num_rows` rows or whose offsets leave the data.
fn check_column(c: usize, chunks: &[TextChunk<'_>], num_rows: usize) -> Result<()> {
    let mut rows = 0usize;
    for (k, chunk) in chunks.iter().enumerate() {
        let name = || format!("columns[{c}][{k}]");
        if chunk.offsets.is_empty() {
            return Err(Error::invalid_argument(
                name(),
                "no offsets",
                "rows + 1 offsets",
            ));
        }
        let data_len = chunk.data.len() as i64;
        let mut previous = chunk.offsets[0];
        if previous < 0 || previous > data_len {
            return Err(Error::invalid_argument(
                name(),
                format!("offset {previous}"),
                format!("offsets within 0..={data_len}"),
            ));
        }
        for &offset in &chunk.offsets[1..] {
            if offset < previous || offset > data_len {
                return Err(Error::invalid_argument(
                    name(),
                    format!("offset {offset} after {previous}"),
                    format!("non-decreasing offsets within 0..={data_len}"),
                ));
            }
            previous = offset;
        }
        rows += chunk.len();
    }
    if rows != num_rows {
        return Err(Error::invalid_argument(
            format!("columns[{c}]"),
            format!("{rows} rows"),
            format!("{num_rows} rows, as many as the dataset"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk<'a>(offsets: &'a [i64], data: &'a [u8]) -> TextChunk<'a> {
        TextChunk { offsets, data }
    }

    #[test]
    fn equal_texts_share_ids_across_columns_and_chunks() {
        // Column 0: "a", "bb" | "a"; column 1: "bb", "", "c".
        let data0 = b"abba";
        let first = [0i64, 1, 3];
        let second = [3i64, 4];
        let data1 = b"bbc";
        let offsets1 = [0i64, 2, 2, 3];
        let columns = vec![
            vec![chunk(&first, data0), chunk(&second, data0)],
            vec![chunk(&offsets1, data1)],
        ];
        let ids = intern_text_columns(&columns, 3).unwrap();
        assert_eq!(ids.column(0).to_vec(), vec![0, 1, 0]);
        assert_eq!(ids.column(1).to_vec(), vec![1, 2, 3]);
    }

    #[test]
    fn row_count_and_offsets_are_checked() {
        let offsets = [0i64, 1];
        let columns = vec![vec![chunk(&offsets, b"a")]];
        assert!(intern_text_columns(&columns, 2).is_err());
        let bad = [0i64, 5];
        let columns = vec![vec![chunk(&bad, b"a")]];
        assert!(intern_text_columns(&columns, 1).is_err());
        let backwards = [1i64, 0];
        let columns = vec![vec![chunk(&backwards, b"a")]];
        assert!(intern_text_columns(&columns, 1).is_err());
    }

    #[test]
    fn no_columns_gives_empty_rows() {
        let ids = intern_text_columns(&[], 4).unwrap();
        assert_eq!(ids.dim(), (4, 0));
    }
}
