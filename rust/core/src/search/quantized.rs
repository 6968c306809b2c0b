//! Exact search over quantised embeddings, and float rescoring of its candidates.
//!
//! The inputs are what `quantize_embeddings` produces:
//! - `int8` / `uint8`: one byte per dimension; scored by their exact integer dot product,
//!   computed with the panel kernel ([`super::panel`]) on byte quads with AVX-512 VNNI, else
//!   on `i16` pairs. `vpdpbusd` multiplies unsigned by signed bytes, so the corpus bytes are
//!   stored with their top bit flipped (int8 `c` as the unsigned `c + 128`, uint8 `c` as the
//!   signed `c - 128`) and the query bytes as they are; the flip adds `+-128 * sum(query)`
//!   to every score of a query, which does not change its ranking and is subtracted at the end.
//! - `binary` (int8, each packed byte minus 128) / `ubinary` (uint8 packed bits): scored by
//!   Hamming distance with `popcnt`. The -128 offset flips the top bit of every byte on both
//!   sides, so XOR-ing the raw bytes gives the same distance for both precisions.
//!
//! [`rescore_quantized`] re-ranks a candidate list with float queries against the
//! dequantised corpus rows (bucket lower edges for int8/uint8, 0/1 bits for binary), in f64.

use std::ops::Range;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2};

use super::panel::{self, Isa, SignedSide, Tile, NR};
use super::scan::{self, offer_row, PanelScan};
use super::select::{Collector, Hit};
use super::{check_block_size, check_width};
use crate::error::{Error, Result};
use crate::parallel;

/// A quantisation precision of `quantize_embeddings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Signed bytes, 256 buckets per dimension shifted by -128.
    Int8,
    /// Unsigned bytes, 256 buckets per dimension.
    Uint8,
    /// Packed sign bits as signed bytes (each packed byte minus 128).
    Binary,
    /// Packed sign bits as unsigned bytes.
    Ubinary,
}

impl Precision {
    /// Whether the rows are packed bits (scored by Hamming distance).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::Binary | Self::Ubinary)
    }

    fn signed(self) -> bool {
        matches!(self, Self::Int8 | Self::Binary)
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "int8" => Ok(Self::Int8),
            "uint8" => Ok(Self::Uint8),
            "binary" => Ok(Self::Binary),
            "ubinary" => Ok(Self::Ubinary),
            other => Err(Error::invalid_argument(
                "precision",
                format!("{other:?}"),
                "one of \"int8\", \"uint8\", \"binary\", \"ubinary\"",
            )),
        }
    }
}

/// A matrix of quantised rows: signed or unsigned bytes.
#[derive(Clone, Copy, Debug)]
pub enum QuantizedCorpus<'a> {
    /// `int8` or `binary` rows.
    I8(ArrayView2<'a, i8>),
    /// `uint8` or `ubinary` rows.
    U8(ArrayView2<'a, u8>),
}

impl QuantizedCorpus<'_> {
    fn dim(&self) -> (usize, usize) {
        match self {
            Self::I8(m) => m.dim(),
            Self::U8(m) => m.dim(),
        }
    }

    fn is_signed(&self) -> bool {
        matches!(self, Self::I8(_))
    }

    /// Row `r`'s bytes as `i16` values (int8 and uint8 alike).
    #[inline]
    fn value(&self, r: usize, c: usize) -> i16 {
        match self {
            Self::I8(m) => i16::from(m[[r, c]]),
            Self::U8(m) => i16::from(m[[r, c]]),
        }
    }

    /// Row `r`'s raw byte `c` (the bit pattern, for binary precisions).
    #[inline]
    fn byte(&self, r: usize, c: usize) -> u8 {
        match self {
            Self::I8(m) => m[[r, c]] as u8,
            Self::U8(m) => m[[r, c]],
        }
    }

    fn check_precision(&self, name: &str, precision: Precision) -> Result<()> {
        if self.is_signed() != precision.signed() {
            let (got, want) = if self.is_signed() {
                ("int8", "uint8")
            } else {
                ("uint8", "int8")
            };
            return Err(Error::invalid_argument(
                name,
                format!("an array of dtype {got}"),
                format!("dtype {want} for precision {precision:?}"),
            ));
        }
        Ok(())
    }
}

/// The result of [`top_k_quantized`]: row `i` holds query `i`'s best corpus rows, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedTopK {
    /// Corpus row indices, shape `[queries, min(k, corpus rows)]`.
    pub indices: Array2<usize>,
    /// Integer dot products (int8/uint8; higher is better) or Hamming distances
    /// (binary/ubinary; lower is better), same shape.
    pub scores: Array2<i32>,
}

/// Exact top-`k` corpus rows per query over quantised rows of the same `precision`.
///
/// int8/uint8 rank by integer dot product (highest first), binary/ubinary by Hamming
/// distance (lowest first); ties go to the lower corpus index. Errors name the argument
/// on dtype/precision or width mismatches, `block_size` 0, or widths so large that an int8
/// dot product could overflow `i32`.
pub fn top_k_quantized(
    queries: QuantizedCorpus<'_>,
    corpus: QuantizedCorpus<'_>,
    precision: Precision,
    k: usize,
    block_size: usize,
) -> Result<QuantizedTopK> {
    check_block_size(block_size)?;
    queries.check_precision("queries", precision)?;
    corpus.check_precision("corpus", precision)?;
    let (n_queries, width) = queries.dim();
    let n_corpus = corpus.dim().0;
    check_width("corpus", corpus.dim().1, width)?;
    // |value| <= 255 (uint8) or 128 (int8): the largest possible dot product must fit in i32.
    let max_product: usize = if precision == Precision::Uint8 {
        255 * 255
    } else {
        128 * 128
    };
    if !precision.is_binary() && width > i32::MAX as usize / max_product {
        return Err(Error::invalid_argument(
            "queries",
            format!("rows of width {width}"),
            format!(
                "at most {} {precision:?} dimensions (larger dot products overflow i32)",
                i32::MAX as usize / max_product
            ),
        ));
    }

    let k = k.min(n_corpus);
    if n_queries == 0 || k == 0 {
        return Ok(QuantizedTopK {
            indices: Array2::zeros((n_queries, k)),
            scores: Array2::zeros((n_queries, k)),
        });
    }
    if precision.is_binary() {
        let words = width.div_ceil(8);
        let query_words = pack_bits(&queries, 0..n_queries, words);
        let block_rows = scan::block_rows(block_size, words * 8);
        let hits = scan::search_parallel(n_queries, n_corpus, k, block_rows, 1, |q, c, col| {
            scan_hamming(&query_words, words, &corpus, block_rows, q, c, col);
            Ok(())
        })?;
        // Ranked by negated distance so that "greater is better" holds; reported as distances.
        let (indices, scores) = scan::to_arrays(&hits, k, |s: i32| -s);
        return Ok(QuantizedTopK { indices, scores });
    }

    let isa = Isa::detect();
    // With the flipped byte a product reaches 255 * 128 in magnitude; the sums before the offset
    // is removed must fit in i32 too, else the i16-pair kernel (exact to the check above) runs.
    let byte_quads = isa.has_vnni() && width <= i32::MAX as usize / (255 * 128);
    let (indices, mut scores) = if byte_quads {
        let tile = match precision {
            Precision::Int8 => tile_quads_signed_query,
            _ => tile_quads_signed_corpus,
        };
        let packing = IntegerPacking {
            depth: width.div_ceil(4),
            query_row: |r, out: &mut [u32]| quad_row(&queries, r, width, 0, out),
            corpus_row: |r, out: &mut [u32]| quad_row(&corpus, r, width, 0x80, out),
            tile,
        };
        packing.search(isa, n_queries, n_corpus, k, block_size)?
    } else {
        let packing = IntegerPacking {
            depth: width.div_ceil(2),
            query_row: |r, out: &mut [u32]| pair_row(&queries, r, width, out),
            corpus_row: |r, out: &mut [u32]| pair_row(&corpus, r, width, out),
            tile: panel::tile_i16_pairs,
        };
        packing.search(isa, n_queries, n_corpus, k, block_size)?
    };
    if byte_quads {
        // Undo the corpus bytes' flipped top bit (see the module notes).
        let sign = if precision == Precision::Int8 {
            -128
        } else {
            128
        };
        for (q, mut row) in scores.rows_mut().into_iter().enumerate() {
            let query_sum: i32 = (0..width).map(|c| i32::from(queries.value(q, c))).sum();
            row.iter_mut().for_each(|s| *s += sign * query_sum);
        }
    }
    Ok(QuantizedTopK { indices, scores })
}

/// How rows become 32-bit words for one integer panel kernel.
struct IntegerPacking<Q, C> {
    /// Words per row.
    depth: usize,
    /// Writes query row `r`'s words.
    query_row: Q,
    /// Writes corpus row `r`'s words.
    corpus_row: C,
    /// The micro-kernel.
    tile: fn(Isa, usize, &[u32], &[u32], &mut Tile<i32>),
}

impl<Q, C> IntegerPacking<Q, C>
where
    Q: Fn(usize, &mut [u32]) + Sync,
    C: Fn(usize, &mut [u32]) + Sync,
{
    /// Top-`k` rows per query by the kernel's integer score, as `(indices, scores)` arrays.
    fn search(
        &self,
        isa: Isa,
        n_queries: usize,
        n_corpus: usize,
        k: usize,
        block_size: usize,
    ) -> Result<(Array2<usize>, Array2<i32>)> {
        let depth = self.depth;
        let mut packed_queries = Vec::new();
        panel::pack_panels(n_queries, depth, isa.mr(), &mut packed_queries, |r, out| {
            (self.query_row)(r, out);
        });
        let block_rows = scan::block_rows(block_size, depth * 4);
        let kernel = PanelScan {
            isa,
            depth,
            packed_queries: &packed_queries,
            block_rows,
            pack_block: |rows: Range<usize>, out: &mut Vec<u32>| {
                panel::pack_panels(rows.len(), depth, NR, out, |r, row| {
                    (self.corpus_row)(rows.start + r, row);
                });
                Ok(())
            },
            tile: self.tile,
        };
        let hits =
            scan::search_parallel(n_queries, n_corpus, k, block_rows, isa.mr(), |q, c, col| {
                kernel.run(q, c, col)
            })?;
        Ok(scan::to_arrays(&hits, k, |s: i32| s))
    }
}

/// Byte-quad kernel for int8: query bytes signed, corpus bytes (flipped) unsigned.
fn tile_quads_signed_query(isa: Isa, depth: usize, a: &[u32], b: &[u32], tile: &mut Tile<i32>) {
    panel::tile_byte_quads(isa, SignedSide::Query, depth, a, b, tile);
}

/// Byte-quad kernel for uint8: query bytes unsigned, corpus bytes (flipped) signed.
fn tile_quads_signed_corpus(isa: Isa, depth: usize, a: &[u32], b: &[u32], tile: &mut Tile<i32>) {
    panel::tile_byte_quads(isa, SignedSide::Corpus, depth, a, b, tile);
}

/// Row `r`'s raw bytes XOR `flip`, four per word (zeros pad the last word).
fn quad_row(m: &QuantizedCorpus<'_>, r: usize, width: usize, flip: u8, out: &mut [u32]) {
    for (p, word) in out.iter_mut().enumerate() {
        let bytes = std::array::from_fn(|t| {
            let c = 4 * p + t;
            if c < width {
                m.byte(r, c) ^ flip
            } else {
                0
            }
        });
        *word = u32::from_le_bytes(bytes);
    }
}

/// Row `r` as `i16` pairs (a zero pads an odd width).
fn pair_row(m: &QuantizedCorpus<'_>, r: usize, width: usize, out: &mut [u32]) {
    for (p, word) in out.iter_mut().enumerate() {
        let lo = m.value(r, 2 * p);
        let hi = if 2 * p + 1 < width {
            m.value(r, 2 * p + 1)
        } else {
            0
        };
        *word = panel::pack_pair(lo, hi);
    }
}

/// Rows `rows` as little-endian `u64` words, `words` per row (zero-padded).
fn pack_bits(m: &QuantizedCorpus<'_>, rows: Range<usize>, words: usize) -> Vec<u64> {
    let width = m.dim().1;
    let mut out = vec![0u64; rows.len() * words];
    for (i, r) in rows.enumerate() {
        for c in 0..width {
            out[i * words + c / 8] |= u64::from(m.byte(r, c)) << (8 * (c % 8));
        }
    }
    out
}

fn scan_hamming(
    query_words: &[u64],
    words: usize,
    corpus: &QuantizedCorpus<'_>,
    block_rows: usize,
    q_range: Range<usize>,
    c_range: Range<usize>,
    collectors: &mut [Collector<i32>],
) {
    let popcount = Popcount::detect();
    let mut scores = Vec::with_capacity(block_rows);
    let mut start = c_range.start;
    while start < c_range.end {
        let end = (start + block_rows).min(c_range.end);
        let block = pack_bits_by_word(corpus, start..end, words);
        for (q, collector) in q_range.clone().zip(collectors.iter_mut()) {
            let query = &query_words[q * words..(q + 1) * words];
            scores.clear();
            scores.resize(end - start, 0);
            popcount.negated_distances(query, &block, &mut scores);
            offer_row(collector, &scores, start);
        }
        start = end;
    }
}

/// Rows `rows` as little-endian `u64` words, word-major: word `w` of row `i` at
/// `w * rows.len() + i`, so that one word of many rows is scored per vector instruction.
fn pack_bits_by_word(m: &QuantizedCorpus<'_>, rows: Range<usize>, words: usize) -> Vec<u64> {
    let n = rows.len();
    let by_row = pack_bits(m, rows, words);
    let mut out = vec![0u64; n * words];
    for (i, row) in by_row.chunks_exact(words).enumerate() {
        for (w, &word) in row.iter().enumerate() {
            out[w * n + i] = word;
        }
    }
    out
}

/// The population-count instructions this CPU offers for Hamming distances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Popcount {
    /// AVX-512 `vpopcntq`: eight words per instruction.
    Avx512,
    /// Scalar `popcnt`.
    Scalar,
    /// No instruction: bit tricks.
    Portable,
}

impl Popcount {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let isa = Isa::detect();
            if isa == Isa::Avx512 && is_x86_feature_detected!("avx512vpopcntdq") {
                return Self::Avx512;
            }
            if isa != Isa::Portable && is_x86_feature_detected!("popcnt") {
                return Self::Scalar;
            }
        }
        Self::Portable
    }

    /// `out[r] = -hamming(query, row r of block)` for a word-major `block` of `out.len()` rows.
    fn negated_distances(self, query: &[u64], block: &[u64], out: &mut [i32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: chosen by `detect` only when the CPU has these features.
            Self::Avx512 => unsafe { negated_distances_avx512(query, block, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Self::Scalar => unsafe { negated_distances_popcnt(query, block, out) },
            _ => negated_distances(query, block, out),
        }
    }
}

/// See [`Popcount::negated_distances`]; a loop over rows per word, which vectorises.
#[inline(always)]
fn negated_distances(query: &[u64], block: &[u64], out: &mut [i32]) {
    let n = out.len();
    out.fill(0);
    for (&q, column) in query.iter().zip(block.chunks_exact(n)) {
        for (o, &word) in out.iter_mut().zip(column) {
            *o -= (q ^ word).count_ones() as i32;
        }
    }
}

/// [`negated_distances`] compiled with `vpopcntq`.
///
/// # Safety
/// The CPU must support AVX-512F and VPOPCNTDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn negated_distances_avx512(query: &[u64], block: &[u64], out: &mut [i32]) {
    negated_distances(query, block, out);
}

/// [`negated_distances`] compiled with the `popcnt` instruction.
///
/// # Safety
/// The CPU must support `popcnt`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn negated_distances_popcnt(query: &[u64], block: &[u64], out: &mut [i32]) {
    negated_distances(query, block, out);
}

/// Re-ranks `candidates` (corpus rows per query) by float `queries` against the dequantised
/// corpus rows, keeping the best `k` per query: `(indices, scores)` with f64 scores.
///
/// int8/uint8 rows map back to their bucket's lower edge, `min + (value [+128]) * step` with
/// `step = (max - min) / 255` (1 for a constant dimension) from `ranges` (shape `(2, dim)`);
/// binary rows map to their 0/1 bits. Ties go to the lower corpus index.
pub fn rescore_quantized(
    queries: ArrayView2<'_, f32>,
    corpus: QuantizedCorpus<'_>,
    precision: Precision,
    ranges: Option<ArrayView2<'_, f32>>,
    candidates: ArrayView2<'_, usize>,
    k: usize,
) -> Result<(Array2<usize>, Array2<f64>)> {
    corpus.check_precision("corpus", precision)?;
    let (n_queries, dim) = queries.dim();
    let (n_corpus, width) = corpus.dim();
    if candidates.nrows() != n_queries {
        return Err(Error::invalid_argument(
            "candidates",
            format!("{} rows", candidates.nrows()),
            format!("one row per query ({n_queries})"),
        ));
    }
    if let Some(bad) = candidates.iter().find(|&&c| c >= n_corpus) {
        return Err(Error::invalid_argument(
            "candidates",
            format!("corpus row {bad}"),
            format!("rows below {n_corpus}, the corpus length"),
        ));
    }
    super::check_rows(queries, 0, super::NanCheck::Queries)?;
    let lookup: Vec<[f64; 2]> = if precision.is_binary() {
        if width != dim.div_ceil(8) {
            return Err(Error::invalid_argument(
                "corpus",
                format!("rows of {width} bytes"),
                format!(
                    "{} bytes, the packed width of {dim}-dimensional queries",
                    dim.div_ceil(8)
                ),
            ));
        }
        Vec::new()
    } else {
        check_width("corpus", width, dim)?;
        let Some(ranges) = ranges else {
            return Err(Error::invalid_argument(
                "ranges",
                "None",
                format!("a (2, {dim}) array of per-dimension minima and maxima"),
            ));
        };
        if ranges.dim() != (2, dim) {
            return Err(Error::invalid_argument(
                "ranges",
                format!("shape {:?}", ranges.dim()),
                format!("shape (2, {dim})"),
            ));
        }
        // The step is computed in f32 like `quantize_embeddings`, then widened.
        (0..dim)
            .map(|j| {
                let step = (ranges[[1, j]] - ranges[[0, j]]) / 255.0;
                let step = if step == 0.0 { 1.0 } else { step };
                [f64::from(ranges[[0, j]]), f64::from(step)]
            })
            .collect()
    };
    let offset = if precision == Precision::Int8 {
        128.0
    } else {
        0.0
    };
    let k = k.min(candidates.ncols());

    let rows: Vec<usize> = (0..n_queries).collect();
    let ranked: Vec<Vec<Hit<f64>>> = parallel::try_map(&rows, |&q| {
        let query = queries.row(q);
        let mut collector = (k > 0).then(|| Collector::new(k));
        for &c in candidates.row(q) {
            let score: f64 = if precision.is_binary() {
                (0..dim)
                    .filter(|&j| {
                        (corpus.byte(c, j / 8) ^ binary_flip(precision)) & (0x80 >> (j % 8)) != 0
                    })
                    .map(|j| f64::from(query[j]))
                    .sum()
            } else {
                (0..dim)
                    .map(|j| {
                        let [min, step] = lookup[j];
                        let value = (f64::from(corpus.value(c, j)) + offset) * step + min;
                        f64::from(query[j]) * value
                    })
                    .sum()
            };
            if let Some(col) = collector.as_mut() {
                // The same row may be listed twice only if the caller did so; keep both.
                col.offer(score, c);
            }
        }
        Ok::<_, Error>(collector.map_or_else(Vec::new, Collector::into_sorted))
    })?;
    let (indices, scores) = scan::to_arrays(&ranked, k, |s| s);
    Ok((indices, scores))
}

/// The byte mask that turns a stored byte back into `np.packbits` output.
#[inline]
fn binary_flip(precision: Precision) -> u8 {
    if precision == Precision::Binary {
        0x80
    } else {
        0
    }
}
