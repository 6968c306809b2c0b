//! Exact float top-k for cosine and dot scores through an integer screen.
//!
//! Every query and corpus row `x` (normalised first for cosine) is coded as `x ~ s * c` with
//! one `i16` level per value (`s = max|x| / L`, `L` up to 2047 so that no dot product of two
//! codes overflows `i32`), and the codes are multiplied with the `i16`-pair kernel, which
//! VNNI runs at twice the float rate. For a query `q` and a row `x` the float score the plain
//! kernel would compute, `f = fl(q . x)`, lies within `b` of the screen's estimate
//! `a = s_q s_x (c_q . c_x)`, where, with `e = x - s c` the coding error,
//!
//! ```text
//! |f - a| <= |q||e_x| + |e_q||x| + |e_q||e_x| + g |q||x|,   g = d u / (1 - d u) + 1e-6,
//! ```
//!
//! (Cauchy-Schwarz on `q . x - s_q c_q . s_x c_x`, plus the float rounding of a `d`-term dot
//! product with unit roundoff `u`; the `1e-6` and a 1e-4 relative margin cover the rounding of
//! the bound itself). Each query keeps, per part of the corpus, the rows whose upper bound
//! `a + b` reaches the k-th largest lower bound `a - b` seen so far: no other row can be in the
//! top k. The survivors (little more than `k`: the bound is about 1e-3 for unit vectors) are
//! then scored with the float kernel itself, in the same accumulation order as the plain
//! search, so ids, scores and tie order are bit for bit those of the plain search. When the
//! band of survivors grows too wide (values of very different magnitudes) or a value is
//! infinite, the screen gives up and the caller runs the plain search.
//!
//! Byte codes (`vpdpbusd`, four times the float rate) were tried first: their bound (~0.017
//! for unit vectors) let a third of all tile rows through the gate, which cost more than the
//! faster kernel saved.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::ArrayView2;

use super::copy_row;
use super::panel::{self, Isa, Tile, NR};
use super::scan::{self, PartCollector, SearchShape};
use super::select::{Collector, Hit};
use crate::error::Result;
use crate::parallel;

/// Smallest corpus the screen is tried on: below it the float kernel alone is quick.
pub(crate) const MIN_CORPUS: usize = 4096;
/// The screen needs this many corpus rows per wanted hit to pay for its rescoring.
const ROWS_PER_HIT: usize = 32;
/// Relative margin on every computed bound (covers the rounding of the bound arithmetic).
const MARGIN: f32 = 1.0 + 1e-4;

/// How a code approximates one row: `x ~ scale * code`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Code {
    /// `max|x| / levels` (0 for an all-zero row).
    scale: f32,
    /// An upper bound of `|x - scale * code|`.
    err: f32,
    /// An upper bound of `|x|`.
    norm: f32,
}

/// Largest code magnitude for rows of `dim` values: `dim * levels^2` must fit in `i32`.
fn levels(dim: usize) -> f32 {
    let fit = ((i32::MAX as f64) / dim.max(1) as f64).sqrt().floor();
    fit.min(2047.0) as f32
}

/// Codes `x` into `codes` (same length) with magnitudes up to `levels`; `None` when a value is
/// not finite.
#[inline(always)]
fn quantize(x: &[f32], levels: f32, codes: &mut [i16]) -> Option<Code> {
    // Rounds to nearest even with plain adds (exact for |v| < 2^22), which vectorise on any
    // x86-64, unlike `f32::round`.
    const ROUND: f32 = 12_582_912.0;
    const LANES: usize = 16;
    let mut max = [0.0f32; LANES];
    let mut finite = true;
    for chunk in x.chunks(LANES) {
        for (m, &v) in max.iter_mut().zip(chunk) {
            finite &= v.is_finite();
            *m = m.max(v.abs());
        }
    }
    let max = max.iter().fold(0.0f32, |m, &v| m.max(v));
    if !finite {
        return None;
    }
    if max == 0.0 {
        codes.fill(0);
        return Some(Code::default());
    }
    let scale = max / levels;
    let (mut err2, mut norm2) = ([0.0f32; LANES], [0.0f32; LANES]);
    for (codes, x) in codes.chunks_mut(LANES).zip(x.chunks(LANES)) {
        for (lane, (c, &v)) in codes.iter_mut().zip(x).enumerate() {
            let level = ((v / scale + ROUND) - ROUND).clamp(-levels, levels);
            // SAFETY: `level` is finite (so is `v`, and `scale > 0`) and within +-2047.
            *c = unsafe { level.to_int_unchecked::<i16>() };
            let e = v - scale * level;
            err2[lane] += e * e;
            norm2[lane] += v * v;
        }
    }
    // The sums carry at most d u relative error; `scale * level` and the subtraction add at
    // most 2 u |x| to the error vector's length.
    let slack = 1.0 + (x.len() as f32 + 4.0) * f32::EPSILON;
    let norm = norm2.iter().sum::<f32>().sqrt() * slack;
    let err = err2.iter().sum::<f32>().sqrt() * slack + 2.0 * f32::EPSILON * norm;
    Some(Code {
        scale,
        err: err.next_up(),
        norm: norm.next_up(),
    })
}

/// A corpus row that may still be in a query's top k.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    upper: f32,
    lower: f32,
    index: usize,
}

/// One query's candidates over one part of the corpus: every row whose upper bound reaches
/// the k-th largest lower bound kept (`floor`).
struct Band {
    k: usize,
    floor: f32,
    candidates: Vec<Candidate>,
    /// Length at which the band is pruned next.
    prune_at: usize,
    /// Set when the band stays wider than [`Band::limit`] after pruning.
    too_wide: bool,
}

impl Band {
    fn new(k: usize) -> Self {
        Self {
            k,
            floor: f32::NEG_INFINITY,
            candidates: Vec::new(),
            prune_at: 4 * k.max(64),
            too_wide: false,
        }
    }

    /// Most candidates a band may keep before the screen is abandoned.
    fn limit(&self) -> usize {
        8 * self.k + 2048
    }

    #[inline]
    fn offer(&mut self, upper: f32, lower: f32, index: usize) {
        if upper >= self.floor {
            self.candidates.push(Candidate {
                upper,
                lower,
                index,
            });
            if self.candidates.len() >= self.prune_at {
                self.prune();
            }
        }
    }

    /// Raises the floor to the k-th largest lower bound and drops the rows below it.
    fn prune(&mut self) {
        if self.candidates.len() > self.k {
            let by_lower_desc = |a: &Candidate, b: &Candidate| b.lower.total_cmp(&a.lower);
            let (_, kth, _) = self
                .candidates
                .select_nth_unstable_by(self.k - 1, by_lower_desc);
            self.floor = self.floor.max(kth.lower);
            let floor = self.floor;
            self.candidates.retain(|c| c.upper >= floor);
        }
        self.too_wide |= self.candidates.len() > self.limit();
        self.prune_at = self.prune_at.max(2 * self.candidates.len());
    }

    /// The surviving corpus rows, ascending.
    fn into_rows(mut self) -> Vec<usize> {
        self.prune();
        let mut rows: Vec<usize> = self.candidates.iter().map(|c| c.index).collect();
        rows.sort_unstable();
        rows
    }
}

impl PartCollector for Band {
    fn merge(&mut self, other: Self) {
        self.floor = self.floor.max(other.floor);
        self.too_wide |= other.too_wide;
        let floor = self.floor;
        self.candidates
            .extend(other.candidates.into_iter().filter(|c| c.upper >= floor));
        self.prune();
    }
}

/// Rows coded as `i16` pairs in panels, with each row's [`Code`].
struct CodedRows {
    /// Panels of [`NR`] rows (the tile kernel's corpus side) or of `mr` rows (query side).
    words: Vec<u32>,
    codes: Vec<Code>,
    /// False when some row held a value that is not finite.
    finite: bool,
}

/// Codes rows `0..n` (given by `row`, normalised when `normalize`) into panels of `height`.
#[inline(always)]
fn code_rows<'a>(
    n: usize,
    dim: usize,
    height: usize,
    normalize: bool,
    row: impl Fn(usize) -> ndarray::ArrayView1<'a, f32>,
) -> CodedRows {
    let depth = dim.div_ceil(2);
    let levels = levels(dim);
    let (mut floats, mut levels_out) = (vec![0.0f32; dim], vec![0i16; depth * 2]);
    let mut codes = Vec::with_capacity(n);
    let mut finite = true;
    let mut words = Vec::new();
    panel::pack_panels(n, depth, height, &mut words, |r, out| {
        copy_row(row(r), normalize, &mut floats);
        let code = quantize(&floats, levels, &mut levels_out[..dim]).unwrap_or_else(|| {
            finite = false;
            Code::default()
        });
        codes.push(code);
        // A zero pads an odd width: it adds nothing to any dot product.
        for (word, pair) in out.iter_mut().zip(levels_out.chunks_exact(2)) {
            *word = panel::pack_pair(pair[0], pair[1]);
        }
    });
    CodedRows {
        words,
        codes,
        finite,
    }
}

/// The screen's exact top-`k` for cosine (`normalize`) or dot scores, or `None` when it gave up
/// (the caller then runs the plain search). `queries` must be free of NaN.
pub(crate) fn top_k(
    isa: Isa,
    queries: ArrayView2<'_, f32>,
    corpus: ArrayView2<'_, f32>,
    k: usize,
    normalize: bool,
    block_rows: usize,
) -> Result<Option<Vec<Vec<Hit<f32>>>>> {
    let (n_queries, dim) = queries.dim();
    let n_corpus = corpus.nrows();
    if n_corpus < MIN_CORPUS.max(ROWS_PER_HIT * k) {
        return Ok(None);
    }
    let depth = dim.div_ceil(2);
    let coded_queries = code_rows(n_queries, dim, isa.mr(), normalize, |r| queries.row(r));
    if !coded_queries.finite {
        return Ok(None);
    }
    // Pairs are twice as dense as floats: blocks of the same byte size hold twice the rows.
    let block_rows = block_rows.max(1) * 2;
    let abandoned = AtomicBool::new(false);
    let screen = Screen {
        isa,
        dim,
        depth,
        normalize,
        corpus,
        queries: &coded_queries,
        block_rows,
        k,
        // Cosine and dot scores of d-term float dot products.
        g: {
            let du = dim as f32 * f32::EPSILON / 2.0;
            du / (1.0 - du) + 1e-6
        },
        abandoned: &abandoned,
    };
    let shape = SearchShape {
        n_queries,
        n_corpus,
        k,
        grain: block_rows,
        query_panel: isa.mr(),
    };
    let bands = scan::collect_parallel(
        shape,
        || Band::new(k),
        |q, c, bands| screen.scan(q, c, bands),
    )?;
    if abandoned.load(Ordering::Relaxed) || bands.iter().any(|b| b.too_wide) {
        return Ok(None);
    }
    let rows: Vec<Vec<usize>> = bands.into_iter().map(Band::into_rows).collect();
    let hits = parallel::try_map(&rows.iter().enumerate().collect::<Vec<_>>(), |(q, rows)| {
        Ok::<_, crate::error::Error>(rescore(isa, queries.row(*q), corpus, rows, k, normalize))
    })?;
    Ok(Some(hits))
}

/// Everything a thread needs to screen its part.
struct Screen<'a> {
    /// The integer and float kernels' implementation.
    isa: Isa,
    /// Values per row.
    dim: usize,
    /// `i16`-pair words per row.
    depth: usize,
    /// Cosine (rows normalised first) or dot.
    normalize: bool,
    corpus: ArrayView2<'a, f32>,
    /// All queries, coded and packed in panels of `isa.mr()` rows.
    queries: &'a CodedRows,
    /// Corpus rows coded at a time.
    block_rows: usize,
    /// Hits wanted per query.
    k: usize,
    /// Relative float rounding allowance of a `dim`-term dot product (see the module notes).
    g: f32,
    /// Set by any thread that gives up; the others stop at their next block.
    abandoned: &'a AtomicBool,
}

impl Screen<'_> {
    /// Screens queries `queries` (starting on a panel boundary) against corpus rows `corpus`.
    fn scan(&self, queries: Range<usize>, corpus: Range<usize>, bands: &mut [Band]) -> Result<()> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx512 is only chosen after runtime detection of these features.
            Isa::Avx512 => unsafe { self.scan_avx512(queries, corpus, bands) },
            _ => self.scan_any(queries, corpus, bands),
        }
    }

    /// [`Screen::scan`] compiled for AVX-512, so the coding and the bounds vectorise widely.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, BW and VNNI.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn scan_avx512(
        &self,
        queries: Range<usize>,
        corpus: Range<usize>,
        bands: &mut [Band],
    ) -> Result<()> {
        self.scan_any(queries, corpus, bands)
    }

    #[inline(always)]
    fn scan_any(
        &self,
        queries: Range<usize>,
        corpus: Range<usize>,
        bands: &mut [Band],
    ) -> Result<()> {
        let (isa, depth) = (self.isa, self.depth);
        let (mr, panels) = (isa.mr(), isa.tile_panels());
        let width = panels * NR;
        let mut tile: Tile<i32> = [0; _];
        let mut upper = [0.0f32; 2 * NR];
        let (mut scales, mut errs, mut norms) = (Vec::new(), Vec::new(), Vec::new());
        let mut block_start = corpus.start;
        while block_start < corpus.end {
            if self.abandoned.load(Ordering::Relaxed) {
                return Ok(());
            }
            let block_end = (block_start + self.block_rows).min(corpus.end);
            let block = self.corpus.slice(ndarray::s![block_start..block_end, ..]);
            // No NaN pass here: coding flags any value that is not finite, the screen then
            // gives up, and the plain search reports a NaN row.
            let rows = block_end - block_start;
            let mut coded = code_rows(rows, self.dim, NR, self.normalize, |r| block.row(r));
            if !coded.finite {
                self.abandoned.store(true, Ordering::Relaxed);
                return Ok(());
            }
            let corpus_panels = rows.div_ceil(NR);
            let padded = corpus_panels.next_multiple_of(panels);
            coded.words.resize(padded * depth * NR, 0);
            coded.codes.resize(padded * NR, Code::default());
            scales.clear();
            scales.extend(coded.codes.iter().map(|c| c.scale));
            errs.clear();
            errs.extend(coded.codes.iter().map(|c| c.err));
            norms.clear();
            norms.extend(coded.codes.iter().map(|c| c.norm));
            for q0 in queries.clone().step_by(mr) {
                let a = &self.queries.words[q0 * depth..(q0 + mr) * depth];
                let valid_i = mr.min(queries.end - q0);
                for cp in (0..corpus_panels).step_by(panels) {
                    let b = &coded.words[cp * depth * NR..(cp + panels) * depth * NR];
                    panel::tile_i16_pairs(isa, depth, a, b, &mut tile);
                    let first = block_start + cp * NR;
                    let valid_j = width.min(rows - cp * NR);
                    let lanes = cp * NR..cp * NR + width;
                    let row_terms = RowTerms {
                        scale: &scales[lanes.clone()],
                        err: &errs[lanes.clone()],
                        norm: &norms[lanes],
                    };
                    for i in 0..valid_i {
                        let q = q0 + i;
                        let band = &mut bands[q - queries.start];
                        let dots = &tile[i * width..(i + 1) * width];
                        let query = QueryTerms::new(&self.queries.codes[q], self.g);
                        query.upper_bounds(&row_terms, dots, &mut upper);
                        // One vector compare per row; only the lanes that reach the floor
                        // (a handful per query and part, once the floor has settled) are
                        // looked at one by one.
                        let mut reach = reaching_lanes(isa, &upper, valid_j, band.floor);
                        if reach != 0 {
                            while reach != 0 {
                                let j = reach.trailing_zeros() as usize;
                                reach &= reach - 1;
                                let up = upper[j];
                                if up >= band.floor {
                                    let bound = query.bound(&row_terms, j);
                                    band.offer(up, up - 2.0 * bound, first + j);
                                }
                            }
                            if band.too_wide {
                                self.abandoned.store(true, Ordering::Relaxed);
                                return Ok(());
                            }
                        }
                    }
                }
            }
            // Memory stays O(queries x k): a part whose bands hold more than a few times `k`
            // rows per query on average gives up (the plain scan needs no bands).
            let held: usize = bands.iter().map(|b| b.candidates.len()).sum();
            if held > bands.len() * (4 * self.k + 256) {
                self.abandoned.store(true, Ordering::Relaxed);
                return Ok(());
            }
            block_start = block_end;
        }
        Ok(())
    }
}

/// Bit `j` set when `upper[j] >= floor`, for the first `valid` (1 to `2 * NR`) lanes.
#[inline(always)]
fn reaching_lanes(isa: Isa, upper: &[f32; 2 * NR], valid: usize, floor: f32) -> u32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx512 is only chosen after runtime detection of AVX-512F.
        Isa::Avx512 => {
            (unsafe { reaching_lanes_avx512(upper, floor) }) & (u32::MAX >> (32 - valid))
        }
        _ => upper[..valid]
            .iter()
            .enumerate()
            .fold(0u32, |m, (j, &u)| m | (u32::from(u >= floor) << j)),
    }
}

/// [`reaching_lanes`] as two vector compares straight into mask registers.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn reaching_lanes_avx512(upper: &[f32; 2 * NR], floor: f32) -> u32 {
    use std::arch::x86_64::*;
    let floor = _mm512_set1_ps(floor);
    // SAFETY: `upper` holds 2 x 16 floats; unaligned loads.
    let (low, high) = unsafe {
        (
            _mm512_loadu_ps(upper.as_ptr()),
            _mm512_loadu_ps(upper.as_ptr().add(NR)),
        )
    };
    let low = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(low, floor);
    let high = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(high, floor);
    u32::from(low) | (u32::from(high) << NR)
}

/// One tile's corpus rows' [`Code`] fields, one slice per field (so the bounds vectorise).
struct RowTerms<'a> {
    scale: &'a [f32],
    err: &'a [f32],
    norm: &'a [f32],
}

/// A query's [`Code`] folded into the factors of its bounds.
struct QueryTerms {
    scale: f32,
    /// `bound = err_factor * row.err + norm_factor * row.norm` (see the module notes).
    err_factor: f32,
    norm_factor: f32,
}

impl QueryTerms {
    #[inline(always)]
    fn new(query: &Code, g: f32) -> Self {
        Self {
            scale: query.scale,
            err_factor: (query.norm + query.err) * MARGIN,
            norm_factor: (query.err + g * query.norm) * MARGIN,
        }
    }

    /// Bound of `|float score - estimate|` against tile column `j`.
    #[inline(always)]
    fn bound(&self, rows: &RowTerms<'_>, j: usize) -> f32 {
        self.err_factor * rows.err[j] + self.norm_factor * rows.norm[j]
    }

    /// Upper bounds of the float scores against one tile row of byte dot products.
    #[inline(always)]
    fn upper_bounds(&self, rows: &RowTerms<'_>, dots: &[i32], upper: &mut [f32; 2 * NR]) {
        let lanes = upper
            .iter_mut()
            .zip(dots)
            .zip(rows.scale)
            .zip(rows.err)
            .zip(rows.norm);
        for ((((u, &dot), &scale), &err), &norm) in lanes {
            let estimate = (self.scale * scale) * dot as f32;
            *u = estimate + (self.err_factor * err + self.norm_factor * norm);
        }
    }
}

/// Query `query`'s exact top-`k` among corpus rows `rows`, scored by the float tile kernel so
/// every score is bit for bit the plain search's.
fn rescore(
    isa: Isa,
    query: ndarray::ArrayView1<'_, f32>,
    corpus: ArrayView2<'_, f32>,
    rows: &[usize],
    k: usize,
    normalize: bool,
) -> Vec<Hit<f32>> {
    let dim = query.len();
    let (mr, panels) = (isa.mr(), isa.tile_panels());
    let width = panels * NR;
    let mut a = vec![0.0f32; dim * mr];
    let mut row = vec![0.0f32; dim];
    copy_row(query, normalize, &mut row);
    for (p, &v) in row.iter().enumerate() {
        a[p * mr] = v;
    }
    let mut packed = Vec::new();
    panel::pack_panels(rows.len(), dim, NR, &mut packed, |r, out| {
        copy_row(corpus.row(rows[r]), normalize, out);
    });
    let corpus_panels = rows.len().div_ceil(NR);
    packed.resize(corpus_panels.next_multiple_of(panels) * dim * NR, 0.0);
    let mut tile: Tile<f32> = [0.0; _];
    let mut collector = Collector::new(k);
    for cp in (0..corpus_panels).step_by(panels) {
        let b = &packed[cp * dim * NR..(cp + panels) * dim * NR];
        panel::tile_f32(isa, dim, &a, b, &mut tile);
        for (j, &score) in tile[..width.min(rows.len() - cp * NR)].iter().enumerate() {
            collector.offer(score, rows[cp * NR + j]);
        }
    }
    collector.into_sorted()
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::super::{top_k_with, ScoreFunction, Screening};
    use super::*;

    /// Deterministic pseudo-random matrix in [-1, 1); `levels > 0` rounds values to that many
    /// steps per unit (exact score ties become common).
    fn matrix(rows: usize, cols: usize, seed: u64, levels: f32) -> Array2<f32> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
        Array2::from_shape_fn((rows, cols), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if levels > 0.0 {
                (x * levels).round() / levels
            } else {
                x
            }
        })
    }

    /// The kernels to screen with: the portable one and, where it runs, the VNNI one.
    fn screen_kernels() -> Vec<Isa> {
        let mut isas = vec![Isa::Portable];
        if Isa::detect().has_vnni() {
            isas.push(Isa::detect());
        }
        isas
    }

    /// Screened and plain searches agree exactly; `must_screen` asserts the screen held.
    fn assert_same(queries: &Array2<f32>, corpus: &Array2<f32>, k: usize, must_screen: bool) {
        for score in [ScoreFunction::Cosine, ScoreFunction::Dot] {
            let plain = top_k_with(
                queries.view(),
                corpus.view(),
                k,
                score,
                4096,
                Screening::Off,
            );
            for isa in screen_kernels() {
                let got = top_k_with(
                    queries.view(),
                    corpus.view(),
                    k,
                    score,
                    4096,
                    Screening::With(isa),
                );
                assert_eq!(
                    got.as_ref().unwrap(),
                    plain.as_ref().unwrap(),
                    "{isa:?} {score:?} k={k}"
                );
                if must_screen {
                    let normalize = score == ScoreFunction::Cosine;
                    let screened = top_k(isa, queries.view(), corpus.view(), k, normalize, 512);
                    assert!(screened.unwrap().is_some(), "{isa:?} {score:?} gave up");
                }
            }
        }
    }

    #[test]
    fn screen_equals_the_plain_search() {
        for (nq, nc, d) in [(13, 5000, 37), (30, 6000, 64)] {
            let queries = matrix(nq, d, nq as u64, 0.0);
            let corpus = matrix(nc, d, nc as u64, 0.0);
            for k in [1, 10, 100] {
                assert_same(&queries, &corpus, k, true);
            }
        }
    }

    #[test]
    fn screen_keeps_exact_ties_in_index_order() {
        let queries = matrix(20, 16, 3, 2.0);
        let mut corpus = matrix(4800, 16, 4, 2.0);
        for i in 0..600 {
            let row = corpus.row(i).to_owned();
            corpus.row_mut(4200 + i).assign(&row);
        }
        for k in [1, 7, 150] {
            assert_same(&queries, &corpus, k, false);
        }
    }

    #[test]
    fn screen_gives_way_on_infinite_values_and_keeps_exactness_on_wide_magnitudes() {
        let queries = matrix(8, 24, 9, 0.0);
        let mut corpus = matrix(5000, 24, 10, 0.0);
        for (i, mut row) in corpus.rows_mut().into_iter().enumerate() {
            row *= 10f32.powi((i % 7) as i32 - 3);
        }
        assert_same(&queries, &corpus, 5, false);
        corpus[[4321, 3]] = f32::INFINITY;
        for isa in screen_kernels() {
            let screened = top_k(isa, queries.view(), corpus.view(), 5, false, 512).unwrap();
            assert!(screened.is_none(), "{isa:?}");
        }
    }

    #[test]
    fn codes_bound_their_error() {
        let x: Vec<f32> = (0..97)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut codes = vec![0i16; x.len()];
        let top = levels(x.len());
        assert_eq!(top, 2047.0);
        let code = quantize(&x, top, &mut codes).unwrap();
        let err: f64 = x
            .iter()
            .zip(&codes)
            .map(|(&v, &c)| (f64::from(v) - f64::from(code.scale) * f64::from(c)).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        assert!(f64::from(code.err) >= err && f64::from(code.err) < err * 1.01 + 1e-6);
        assert!(f64::from(code.norm) >= norm && f64::from(code.norm) < norm * 1.001);
        assert_eq!(codes.iter().map(|c| c.unsigned_abs()).max(), Some(2047));
        assert!(quantize(&[1.0, f32::INFINITY], top, &mut [0, 0]).is_none());
        assert_eq!(
            quantize(&[0.0, 0.0], top, &mut [1, 1]),
            Some(Code::default())
        );
        // Wide rows get fewer levels, so that a dot product of two codes fits in i32.
        let wide = levels(4096);
        assert!(4096.0 * f64::from(wide).powi(2) <= f64::from(i32::MAX));
    }

    #[test]
    fn screen_gives_way_when_every_row_ties() {
        // All rows equal: every row stays a candidate, so the bands outgrow their budget.
        let queries = matrix(6, 32, 11, 0.0);
        let row = matrix(1, 32, 12, 0.0);
        let corpus = Array2::from_shape_fn((6000, 32), |(_, c)| row[[0, c]]);
        for isa in screen_kernels() {
            let screened = top_k(isa, queries.view(), corpus.view(), 3, true, 512).unwrap();
            assert!(screened.is_none(), "{isa:?}");
        }
        assert_same(&queries, &corpus, 3, false);
    }

    #[test]
    fn band_keeps_every_row_that_can_still_be_in_the_top_k() {
        let mut band = Band::new(2);
        for (i, (u, l)) in [(1.0, 0.8), (0.9, 0.7), (0.5, 0.4), (0.75, 0.6), (0.69, 0.1)]
            .into_iter()
            .enumerate()
        {
            band.offer(u, l, i);
        }
        // Second-largest lower bound is 0.7: rows with upper >= 0.7 survive.
        assert_eq!(band.into_rows(), vec![0, 1, 3]);
    }
}
