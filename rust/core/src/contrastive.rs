//! Row-softmax passes of in-batch contrastive losses (InfoNCE / MultipleNegativesRankingLoss).
//!
//! Training a contrastive loss on a batch of `n` (query, document) pairs scores every query
//! against every document: an `n x m` matrix of dot products that a matrix product (torch's)
//! computes. Everything else in the loss is elementwise over that matrix: scale each dot
//! product into a logit, a softmax per row, the log-probability of each row's positive, and in
//! the backward pass the gradient with respect to the dot products. Done as a chain of torch
//! operations that is about ten passes over a 16 MB matrix, each its own parallel region; on a
//! CPU shared with other processes every region waits for its slowest thread, so the chain
//! slows far more than its arithmetic. Here each pass is one parallel loop over blocks of rows
//! that keeps a row in L1 from the first read to the last write.
//!
//! The logit of row `i`, column `j` is `(row_scale[i] * col_scale[j]) * dots[i][j]`, and the
//! positive of row `i` is column `i` (the first `n` columns are the positives). Both kernels
//! give the same results whatever the thread count: rows are independent, and the one
//! reduction across rows (the column sums) adds its per-block partial sums in block order.

use crate::error::{Error, Result};
use crate::parallel;

/// Rows per parallel task: small enough that a 2048-row batch splits into many tasks (so an
/// idle thread can take over the work of a descheduled one), large enough that the per-task
/// column-sum buffer costs little.
const ROWS_PER_TASK: usize = 32;

/// A row-major `rows x cols` matrix of dot products and the per-row and per-column factors
/// that turn it into logits.
#[derive(Clone, Copy, Debug)]
pub struct ScaledDots<'a> {
    /// The dot products, row-major, `rows * cols` values.
    pub dots: &'a [f32],
    /// Number of rows (queries).
    pub rows: usize,
    /// Number of columns (documents); at least `rows`, as column `i` is row `i`'s positive.
    pub cols: usize,
    /// One factor per row (for cosine logits: `scale / ||query||`).
    pub row_scale: &'a [f32],
    /// One factor per column (for cosine logits: `1 / ||document||`).
    pub col_scale: &'a [f32],
}

/// What [`softmax_rows`] returns besides the probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxRows {
    /// Per row: the log-probability of its positive (column `i` for row `i`).
    pub log_prob_positive: Vec<f32>,
    /// Per row `i`: `sum_j p_ij * l_ij - l_ii`, how the row's loss moves when all its logits
    /// scale together (the gradient through a row's norm).
    pub row_sum: Vec<f32>,
    /// Per column `j`: `sum_i p_ij * l_ij`, minus `l_jj` when column `j` is a positive; the same
    /// for a column's norm.
    pub col_sum: Vec<f32>,
}

impl ScaledDots<'_> {
    fn check(&self) -> Result<()> {
        let expected = self.rows.checked_mul(self.cols);
        if expected != Some(self.dots.len()) {
            return Err(Error::invalid_argument(
                "dots",
                format!("{} values", self.dots.len()),
                format!("rows * cols = {} x {} values", self.rows, self.cols),
            ));
        }
        if self.cols < self.rows {
            return Err(Error::invalid_argument(
                "cols",
                self.cols,
                format!(
                    "at least rows = {} (column i is row i's positive)",
                    self.rows
                ),
            ));
        }
        check_len("row_scale", self.row_scale.len(), self.rows)?;
        check_len("col_scale", self.col_scale.len(), self.cols)
    }
}

fn check_len(name: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        return Ok(());
    }
    Err(Error::invalid_argument(
        name,
        format!("{len} values"),
        format!("{expected} values"),
    ))
}

/// The row softmax of the logits of `scaled`: per-row log-probabilities of the positives,
/// the row and column sums the norms' gradient needs, and (when `probs` is given, `rows * cols`
/// values) the probabilities themselves, written row-major.
pub fn softmax_rows(scaled: &ScaledDots<'_>, probs: Option<&mut [f32]>) -> Result<SoftmaxRows> {
    scaled.check()?;
    let (rows, cols) = (scaled.rows, scaled.cols);
    if rows == 0 {
        return Ok(SoftmaxRows {
            log_prob_positive: Vec::new(),
            row_sum: Vec::new(),
            col_sum: vec![0.0; cols],
        });
    }
    let isa = Isa::detect();
    let task = |first_row: usize, probs: &mut [f32]| -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let count = probs.len() / cols;
        let mut log_prob = Vec::with_capacity(count);
        let mut row_sum = Vec::with_capacity(count);
        let mut col_sum = vec![0f32; cols];
        for (r, out) in probs.chunks_exact_mut(cols).enumerate() {
            let i = first_row + r;
            let row = &scaled.dots[i * cols..(i + 1) * cols];
            let (lp, rs) = isa.softmax_row(
                row,
                scaled.row_scale[i],
                scaled.col_scale,
                i,
                out,
                &mut col_sum,
            );
            log_prob.push(lp);
            row_sum.push(rs);
        }
        (log_prob, row_sum, col_sum)
    };
    let mut scratch;
    let probs = match probs {
        Some(out) => {
            check_len("probs", out.len(), rows * cols)?;
            out
        }
        None => {
            scratch = vec![0f32; rows * cols];
            &mut scratch[..]
        }
    };
    let parts = parallel::map_chunks_mut(probs, ROWS_PER_TASK * cols, |block, chunk| {
        task(block * ROWS_PER_TASK, chunk)
    });
    let mut result = SoftmaxRows {
        log_prob_positive: Vec::with_capacity(rows),
        row_sum: Vec::with_capacity(rows),
        col_sum: vec![0f32; cols],
    };
    for (log_prob, row_sum, col_sum) in parts {
        result.log_prob_positive.extend(log_prob);
        result.row_sum.extend(row_sum);
        result
            .col_sum
            .iter_mut()
            .zip(&col_sum)
            .for_each(|(total, part)| *total += part);
    }
    // Column j's positive logit l_jj is not part of its "moves with the norm" sum.
    for j in 0..rows {
        let positive = scaled.row_scale[j] * scaled.col_scale[j] * scaled.dots[j * cols + j];
        result.col_sum[j] -= positive;
    }
    Ok(result)
}

/// One backward step over the probabilities of a row softmax: with `probs`,
/// `grad[i][j] += (row_scale[i] * col_scale[j]) * probs[i][j]`; without, `grad` holds the
/// probabilities and is scaled in place the same way. Then `grad[i][i] -= row_scale[i] *
/// col_scale[i]` (the positives' one-hot). `grad` is row-major, `row_scale.len()` rows of
/// `col_scale.len()` columns, at least as many columns as rows.
pub fn accumulate_scaled_probs(
    grad: &mut [f32],
    probs: Option<&[f32]>,
    row_scale: &[f32],
    col_scale: &[f32],
) -> Result<()> {
    let (rows, cols) = (row_scale.len(), col_scale.len());
    check_len("grad", grad.len(), rows * cols)?;
    if let Some(probs) = probs {
        check_len("probs", probs.len(), rows * cols)?;
    }
    if cols < rows {
        return Err(Error::invalid_argument(
            "col_scale",
            format!("{cols} values"),
            format!("at least one per row ({rows}; column i is row i's positive)"),
        ));
    }
    if rows == 0 {
        return Ok(());
    }
    let isa = Isa::detect();
    parallel::map_chunks_mut(grad, ROWS_PER_TASK * cols, |block, chunk| {
        let first_row = block * ROWS_PER_TASK;
        for (r, out) in chunk.chunks_exact_mut(cols).enumerate() {
            let i = first_row + r;
            let source = probs.map(|p| &p[i * cols..(i + 1) * cols]);
            isa.scale_row(out, source, row_scale[i], col_scale);
            out[i] -= row_scale[i] * col_scale[i];
        }
    });
    Ok(())
}

/// Which implementation of the row loops this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// AVX-512 intrinsics for the softmax, 16 columns per vector.
    Avx512,
    /// AVX2 and FMA intrinsics for the softmax (the compiler does not vectorise its reductions).
    Avx2,
    /// Plain loops (the scaling pass vectorises on its own; the softmax runs scalar).
    Portable,
}

impl Isa {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }

    /// [`rows::scale_row`], compiled for this CPU's vector width.
    fn scale_row(self, out: &mut [f32], source: Option<&[f32]>, row_scale: f32, col_scale: &[f32]) {
        match self {
            // SAFETY (both arms): `detect` found the instructions on this CPU.
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => unsafe { avx512::scale_row(out, source, row_scale, col_scale) },
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => unsafe { avx2::scale_row(out, source, row_scale, col_scale) },
            _ => rows::scale_row(out, source, row_scale, col_scale),
        }
    }

    fn softmax_row(
        self,
        dots: &[f32],
        row_scale: f32,
        col_scale: &[f32],
        positive: usize,
        out: &mut [f32],
        col_total: &mut [f32],
    ) -> (f32, f32) {
        match self {
            // SAFETY: `detect` only returns Avx512 when the CPU has AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => unsafe {
                avx512::softmax_row(dots, row_scale, col_scale, positive, out, col_total)
            },
            // SAFETY: `detect` only returns Avx2 when the CPU has AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => unsafe {
                avx2::softmax_row(dots, row_scale, col_scale, positive, out, col_total)
            },
            _ => rows::softmax_row(dots, row_scale, col_scale, positive, out, col_total),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The row softmax with AVX2 and FMA intrinsics: 8 columns per vector, the last few
    //! columns one at a time. Same passes and the same `exp` polynomial as
    //! [`super::rows::softmax_row`], with fused multiply-adds.

    use std::arch::x86_64::*;

    use super::rows::{self, EXP_COEFFICIENTS, EXP_FLOOR, LN2_HI, LN2_LO};

    const LANES: usize = 8;

    /// [`rows::scale_row`] vectorised by the compiler for AVX2 (same arithmetic, same bits).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn scale_row(
        out: &mut [f32],
        source: Option<&[f32]>,
        row_scale: f32,
        col_scale: &[f32],
    ) {
        rows::scale_row(out, source, row_scale, col_scale);
    }

    /// Logits of columns `j..j + 8`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn logits(dots: &[f32], col_scale: &[f32], row_scale: __m256, j: usize) -> __m256 {
        assert!(j + LANES <= dots.len() && j + LANES <= col_scale.len());
        // SAFETY: both slices hold columns j..j + 8 (asserted above).
        let (d, c) = unsafe {
            (
                _mm256_loadu_ps(dots.as_ptr().add(j)),
                _mm256_loadu_ps(col_scale.as_ptr().add(j)),
            )
        };
        _mm256_mul_ps(_mm256_mul_ps(row_scale, c), d)
    }

    /// `e^x` lane by lane for `x <= 0` (see [`rows::exp`]).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp(x: __m256) -> __m256 {
        const ROUND: f32 = 12_582_912.0;
        let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_FLOOR));
        let x = _mm256_max_ps(x, _mm256_set1_ps(EXP_FLOOR));
        let round = _mm256_set1_ps(ROUND);
        let shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), round);
        let n = _mm256_sub_ps(shifted, round);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(EXP_COEFFICIENTS[0]);
        for &coefficient in &EXP_COEFFICIENTS[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(coefficient));
        }
        // 2^n from the integer in the low mantissa bits of `shifted`, then 0 below the floor.
        let n_bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(round));
        let two_to_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(n_bits, _mm256_set1_epi32(127)));
        _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(two_to_n)))
    }

    /// The eight lanes as an array.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn lanes(v: __m256) -> [f32; LANES] {
        let mut out = [0f32; LANES];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    /// The sum of the lanes, pairwise.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn sum_lanes(v: __m256) -> f32 {
        let l = lanes(v);
        ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
    }

    /// See [`rows::softmax_row`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn softmax_row(
        dots: &[f32],
        row_scale: f32,
        col_scale: &[f32],
        positive: usize,
        out: &mut [f32],
        col_total: &mut [f32],
    ) -> (f32, f32) {
        let cols = dots.len();
        let (col_scale, out, col_total) =
            (&col_scale[..cols], &mut out[..cols], &mut col_total[..cols]);
        let full = cols - cols % LANES;
        let scale = _mm256_set1_ps(row_scale);
        let zero = _mm256_setzero_ps();
        let tail_logit = |j: usize| (row_scale * col_scale[j]) * dots[j];

        // Pass 1: the maximum, and a sum of `l * 0` that is NaN when some logit is not finite.
        let mut max_v = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut poison_v = zero;
        for j in (0..full).step_by(LANES) {
            let l = logits(dots, col_scale, scale, j);
            max_v = _mm256_max_ps(max_v, l);
            poison_v = _mm256_fmadd_ps(l, zero, poison_v);
        }
        let mut max = lanes(max_v).into_iter().fold(f32::NEG_INFINITY, f32::max);
        let mut poison = sum_lanes(poison_v);
        for j in full..cols {
            let l = tail_logit(j);
            max = max.max(l);
            poison += l * 0.0;
        }
        if poison.is_nan() || !max.is_finite() {
            return rows::softmax_row(dots, row_scale, col_scale, positive, out, col_total);
        }

        // Pass 2: e^(l - max) into `out`, and their sum.
        let shift = _mm256_set1_ps(max);
        let mut sum_v = zero;
        for j in (0..full).step_by(LANES) {
            let e = exp(_mm256_sub_ps(logits(dots, col_scale, scale, j), shift));
            out[j..j + LANES].copy_from_slice(&lanes(e));
            sum_v = _mm256_add_ps(sum_v, e);
        }
        let mut total = sum_lanes(sum_v);
        for (j, o) in out.iter_mut().enumerate().skip(full) {
            *o = rows::exp(tail_logit(j) - max);
            total += *o;
        }
        let inv = 1.0 / total;

        // Pass 3: normalise, and the probability-weighted logits per row and per column.
        let inv_v = _mm256_set1_ps(inv);
        let mut weighted_v = zero;
        for j in (0..full).step_by(LANES) {
            let block = &mut out[j..j + LANES];
            // SAFETY: `block` and `col_total[j..j + 8]` hold 8 floats each (j + 8 <= full).
            unsafe {
                let p = _mm256_mul_ps(_mm256_loadu_ps(block.as_ptr()), inv_v);
                _mm256_storeu_ps(block.as_mut_ptr(), p);
                let product = _mm256_mul_ps(p, logits(dots, col_scale, scale, j));
                weighted_v = _mm256_add_ps(weighted_v, product);
                let column = col_total[j..j + LANES].as_mut_ptr();
                _mm256_storeu_ps(column, _mm256_add_ps(_mm256_loadu_ps(column), product));
            }
        }
        let mut weighted = sum_lanes(weighted_v);
        for (j, (o, t)) in out
            .iter_mut()
            .zip(col_total.iter_mut())
            .enumerate()
            .skip(full)
        {
            *o *= inv;
            let product = *o * tail_logit(j);
            weighted += product;
            *t += product;
        }
        let positive_logit = tail_logit(positive);
        (positive_logit - max - total.ln(), weighted - positive_logit)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The row softmax with AVX-512 intrinsics: the AVX2 version's passes and arithmetic, 16
    //! columns per vector (so its sums add the columns in another order than the AVX2 version's,
    //! which changes results only in the last bits).

    use std::arch::x86_64::*;

    use super::rows::{self, EXP_COEFFICIENTS, EXP_FLOOR, LN2_HI, LN2_LO};

    const LANES: usize = 16;

    /// [`rows::scale_row`] vectorised by the compiler for AVX-512 (same arithmetic, same bits).
    #[target_feature(enable = "avx512f")]
    pub(super) fn scale_row(
        out: &mut [f32],
        source: Option<&[f32]>,
        row_scale: f32,
        col_scale: &[f32],
    ) {
        rows::scale_row(out, source, row_scale, col_scale);
    }

    /// Logits of columns `j..j + 16`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn logits(dots: &[f32], col_scale: &[f32], row_scale: __m512, j: usize) -> __m512 {
        assert!(j + LANES <= dots.len() && j + LANES <= col_scale.len());
        // SAFETY: both slices hold columns j..j + 16 (asserted above).
        let (d, c) = unsafe {
            (
                _mm512_loadu_ps(dots.as_ptr().add(j)),
                _mm512_loadu_ps(col_scale.as_ptr().add(j)),
            )
        };
        _mm512_mul_ps(_mm512_mul_ps(row_scale, c), d)
    }

    /// `e^x` lane by lane for `x <= 0` (see [`rows::exp`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp(x: __m512) -> __m512 {
        const ROUND: f32 = 12_582_912.0;
        let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_FLOOR));
        let x = _mm512_max_ps(x, _mm512_set1_ps(EXP_FLOOR));
        let round = _mm512_set1_ps(ROUND);
        let shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), round);
        let n = _mm512_sub_ps(shifted, round);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(EXP_COEFFICIENTS[0]);
        for &coefficient in &EXP_COEFFICIENTS[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(coefficient));
        }
        // 2^n from the integer in the low mantissa bits of `shifted`, then 0 below the floor.
        let n_bits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(round));
        let two_to_n = _mm512_slli_epi32::<23>(_mm512_add_epi32(n_bits, _mm512_set1_epi32(127)));
        _mm512_maskz_mov_ps(!underflow, _mm512_mul_ps(p, _mm512_castsi512_ps(two_to_n)))
    }

    /// The sixteen lanes as an array.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn lanes(v: __m512) -> [f32; LANES] {
        let mut out = [0f32; LANES];
        // SAFETY: `out` holds 16 floats.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    /// The sum of the lanes, pairwise.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sum_lanes(v: __m512) -> f32 {
        let l = lanes(v);
        let h: [f32; 8] = std::array::from_fn(|i| l[i] + l[i + 8]);
        ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]))
    }

    /// See [`rows::softmax_row`].
    #[target_feature(enable = "avx512f")]
    pub(super) fn softmax_row(
        dots: &[f32],
        row_scale: f32,
        col_scale: &[f32],
        positive: usize,
        out: &mut [f32],
        col_total: &mut [f32],
    ) -> (f32, f32) {
        let cols = dots.len();
        let (col_scale, out, col_total) =
            (&col_scale[..cols], &mut out[..cols], &mut col_total[..cols]);
        let full = cols - cols % LANES;
        let scale = _mm512_set1_ps(row_scale);
        let zero = _mm512_setzero_ps();
        let tail_logit = |j: usize| (row_scale * col_scale[j]) * dots[j];

        // Pass 1: the maximum, and a sum of `l * 0` that is NaN when some logit is not finite.
        let mut max_v = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut poison_v = zero;
        for j in (0..full).step_by(LANES) {
            let l = logits(dots, col_scale, scale, j);
            max_v = _mm512_max_ps(max_v, l);
            poison_v = _mm512_fmadd_ps(l, zero, poison_v);
        }
        let mut max = lanes(max_v).into_iter().fold(f32::NEG_INFINITY, f32::max);
        let mut poison = sum_lanes(poison_v);
        for j in full..cols {
            let l = tail_logit(j);
            max = max.max(l);
            poison += l * 0.0;
        }
        if poison.is_nan() || !max.is_finite() {
            return rows::softmax_row(dots, row_scale, col_scale, positive, out, col_total);
        }

        // Pass 2: e^(l - max) into `out`, and their sum.
        let shift = _mm512_set1_ps(max);
        let mut sum_v = zero;
        for j in (0..full).step_by(LANES) {
            let e = exp(_mm512_sub_ps(logits(dots, col_scale, scale, j), shift));
            out[j..j + LANES].copy_from_slice(&lanes(e));
            sum_v = _mm512_add_ps(sum_v, e);
        }
        let mut total = sum_lanes(sum_v);
        for (j, o) in out.iter_mut().enumerate().skip(full) {
            *o = rows::exp(tail_logit(j) - max);
            total += *o;
        }
        let inv = 1.0 / total;

        // Pass 3: normalise, and the probability-weighted logits per row and per column.
        let inv_v = _mm512_set1_ps(inv);
        let mut weighted_v = zero;
        for j in (0..full).step_by(LANES) {
            let block = &mut out[j..j + LANES];
            // SAFETY: `block` and `col_total[j..j + 16]` hold 16 floats each (j + 16 <= full).
            unsafe {
                let p = _mm512_mul_ps(_mm512_loadu_ps(block.as_ptr()), inv_v);
                _mm512_storeu_ps(block.as_mut_ptr(), p);
                let product = _mm512_mul_ps(p, logits(dots, col_scale, scale, j));
                weighted_v = _mm512_add_ps(weighted_v, product);
                let column = col_total[j..j + LANES].as_mut_ptr();
                _mm512_storeu_ps(column, _mm512_add_ps(_mm512_loadu_ps(column), product));
            }
        }
        let mut weighted = sum_lanes(weighted_v);
        for (j, (o, t)) in out
            .iter_mut()
            .zip(col_total.iter_mut())
            .enumerate()
            .skip(full)
        {
            *o *= inv;
            let product = *o * tail_logit(j);
            weighted += product;
            *t += product;
        }
        let positive_logit = tail_logit(positive);
        (positive_logit - max - total.ln(), weighted - positive_logit)
    }
}

mod rows {
    //! The row loops in plain Rust: the reference for the vector version and the path on CPUs
    //! without AVX-512. The scaling pass vectorises on its own; the softmax's reductions stay
    //! scalar (the compiler keeps their order), which is still several times faster than the
    //! chain of torch operations it replaces.

    /// The logit of column `j`: `(row_scale * col_scale[j]) * dots[j]`, in that order, the
    /// order of `outer(row_scale, col_scale) * dots`.
    #[inline(always)]
    fn logit(dot: f32, row_scale: f32, col_scale: f32) -> f32 {
        (row_scale * col_scale) * dot
    }

    /// Softmax of one row into `out`, adding `p_j * l_j` onto `col_total[j]`; returns the
    /// log-probability of `positive` and `sum_j p_j * l_j - l_positive`.
    pub(super) fn softmax_row(
        dots: &[f32],
        row_scale: f32,
        col_scale: &[f32],
        positive: usize,
        out: &mut [f32],
        col_total: &mut [f32],
    ) -> (f32, f32) {
        let cols = dots.len();
        let (col_scale, out, col_total) =
            (&col_scale[..cols], &mut out[..cols], &mut col_total[..cols]);
        let logits = || {
            dots.iter()
                .zip(col_scale)
                .map(|(&d, &c)| logit(d, row_scale, c))
        };
        let mut max = f32::NEG_INFINITY;
        for l in logits() {
            if l.is_nan() {
                return softmax_row_exact(dots, row_scale, col_scale, positive, out, col_total);
            }
            max = max.max(l);
        }
        if !max.is_finite() {
            return softmax_row_exact(dots, row_scale, col_scale, positive, out, col_total);
        }
        let mut total = 0f32;
        for (o, l) in out.iter_mut().zip(logits()) {
            *o = exp(l - max);
            total += *o;
        }
        let inv = 1.0 / total;
        let mut weighted = 0f32;
        for ((o, t), l) in out.iter_mut().zip(col_total.iter_mut()).zip(logits()) {
            *o *= inv;
            let product = *o * l;
            weighted += product;
            *t += product;
        }
        let positive_logit = logit(dots[positive], row_scale, col_scale[positive]);
        (positive_logit - max - total.ln(), weighted - positive_logit)
    }

    /// The same row with the standard library's `exp`, one column at a time: the path for rows
    /// holding NaN or infinite logits, so those propagate as they do through torch's softmax.
    #[cold]
    fn softmax_row_exact(
        dots: &[f32],
        row_scale: f32,
        col_scale: &[f32],
        positive: usize,
        out: &mut [f32],
        col_total: &mut [f32],
    ) -> (f32, f32) {
        let logits: Vec<f32> = dots
            .iter()
            .zip(col_scale)
            .map(|(&d, &c)| logit(d, row_scale, c))
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        });
        let shift = if max.is_finite() { max } else { 0.0 };
        let total: f32 = logits.iter().map(|&l| (l - shift).exp()).sum();
        let log_total = total.ln() + shift;
        let mut weighted = 0f32;
        for ((o, t), &l) in out.iter_mut().zip(col_total.iter_mut()).zip(&logits) {
            *o = (l - log_total).exp();
            weighted += *o * l;
            *t += *o * l;
        }
        let positive_logit = logits[positive];
        (positive_logit - log_total, weighted - positive_logit)
    }

    /// `out[j] = out[j] + source[j] * (row_scale * col_scale[j])`, or with no source
    /// `out[j] = out[j] * (row_scale * col_scale[j])`.
    #[inline(always)]
    pub(super) fn scale_row(
        out: &mut [f32],
        source: Option<&[f32]>,
        row_scale: f32,
        col_scale: &[f32],
    ) {
        let cols = out.len();
        let col_scale = &col_scale[..cols];
        match source {
            Some(source) => {
                for ((o, &s), &c) in out.iter_mut().zip(&source[..cols]).zip(col_scale) {
                    *o += s * (row_scale * c);
                }
            }
            None => {
                for (o, &c) in out.iter_mut().zip(col_scale) {
                    *o *= row_scale * c;
                }
            }
        }
    }

    /// Below this, `e^x` leaves the normal range and [`exp`] returns 0.
    pub(super) const EXP_FLOOR: f32 = -87.3;
    /// ln 2 split in two; `LN2_HI` has few mantissa bits, so `n * LN2_HI` is exact.
    pub(super) const LN2_HI: f32 = 355.0 / 512.0;
    pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
    /// The Taylor polynomial of `e^r` to degree 7, highest coefficient first.
    pub(super) const EXP_COEFFICIENTS: [f32; 8] = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];

    /// `e^x` for `x <= 0` (a logit minus its row's maximum) to within a few units in the last
    /// place: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, the Taylor polynomial of `e^r` to degree
    /// 7 (truncation error below 1e-8), and `2^n` built in the exponent bits. Below
    /// [`EXP_FLOOR`] it returns 0: a row's largest term is 1, so such a term is lost in its sum
    /// anyway.
    #[inline(always)]
    pub(super) fn exp(x: f32) -> f32 {
        // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
        const ROUND: f32 = 12_582_912.0;
        let underflow = x < EXP_FLOOR;
        let x = if underflow { EXP_FLOOR } else { x };
        let shifted = x * std::f32::consts::LOG2_E + ROUND;
        let n = shifted - ROUND;
        let r = (x - n * LN2_HI) - n * LN2_LO;
        let p = EXP_COEFFICIENTS[1..]
            .iter()
            .fold(EXP_COEFFICIENTS[0], |p, &c| p * r + c);
        // The integer n sits in the low mantissa bits of `shifted`: 2^n without a float-to-int
        // conversion.
        let bits = shifted
            .to_bits()
            .wrapping_sub(ROUND.to_bits())
            .wrapping_add(127)
            << 23;
        let value = p * f32::from_bits(bits);
        if underflow {
            0.0
        } else {
            value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(scaled: &ScaledDots<'_>) -> (Vec<f64>, SoftmaxRows) {
        let (rows, cols) = (scaled.rows, scaled.cols);
        let mut probs = vec![0f64; rows * cols];
        let mut out = SoftmaxRows {
            log_prob_positive: vec![],
            row_sum: vec![],
            col_sum: vec![0.0; cols],
        };
        let mut col_sum = vec![0f64; cols];
        for i in 0..rows {
            let logits: Vec<f64> = (0..cols)
                .map(|j| {
                    f64::from(scaled.row_scale[i])
                        * f64::from(scaled.col_scale[j])
                        * f64::from(scaled.dots[i * cols + j])
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            let mut weighted = 0.0;
            for j in 0..cols {
                let p = (logits[j] - lse).exp();
                probs[i * cols + j] = p;
                weighted += p * logits[j];
                col_sum[j] += p * logits[j];
            }
            out.log_prob_positive.push((logits[i] - lse) as f32);
            out.row_sum.push((weighted - logits[i]) as f32);
            col_sum[i] -= logits[i];
        }
        out.col_sum = col_sum.iter().map(|&v| v as f32).collect();
        (probs, out)
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_std() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (ours, std) = (rows::exp(x), x.exp());
            assert!(
                (ours - std).abs() <= 4.0 * f32::EPSILON * std,
                "x={x}: {ours} vs {std}"
            );
            x += 0.0137;
        }
        assert_eq!(rows::exp(-100.0), 0.0);
        assert_eq!(rows::exp(0.0), 1.0);
    }

    #[test]
    fn softmax_rows_match_a_float64_reference() {
        let (rows, cols) = (70, 150);
        let dots = pseudo_random(rows * cols, 1);
        let row_scale: Vec<f32> = pseudo_random(rows, 2)
            .iter()
            .map(|v| 20.0 + 5.0 * v)
            .collect();
        let col_scale: Vec<f32> = pseudo_random(cols, 3)
            .iter()
            .map(|v| 1.0 + 0.5 * v)
            .collect();
        let scaled = ScaledDots {
            dots: &dots,
            rows,
            cols,
            row_scale: &row_scale,
            col_scale: &col_scale,
        };
        let mut probs = vec![0f32; rows * cols];
        let got = softmax_rows(&scaled, Some(&mut probs)).unwrap();
        let (want_probs, want) = reference(&scaled);
        for (a, b) in probs.iter().zip(&want_probs) {
            assert!((f64::from(*a) - b).abs() <= 1e-6 * (1.0 + b), "{a} vs {b}");
        }
        for (a, b) in got.log_prob_positive.iter().zip(&want.log_prob_positive) {
            assert!(close(*a, *b, 1e-5), "{a} vs {b}");
        }
        for (a, b) in got.row_sum.iter().zip(&want.row_sum) {
            assert!(close(*a, *b, 1e-4), "{a} vs {b}");
        }
        for (a, b) in got.col_sum.iter().zip(&want.col_sum) {
            assert!(close(*a, *b, 1e-4), "{a} vs {b}");
        }
        // Without a probability buffer the statistics are the same.
        assert_eq!(softmax_rows(&scaled, None).unwrap(), got);
    }

    #[test]
    fn every_instruction_set_matches_the_plain_rows() {
        let cols = 150; // not a multiple of 8 or 16: the tails run too
        let dots = pseudo_random(cols, 5);
        let col_scale: Vec<f32> = pseudo_random(cols, 6)
            .iter()
            .map(|v| 1.0 + 0.5 * v)
            .collect();
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                isas.push(Isa::Avx2);
            }
        }
        let mut want_probs = vec![0f32; cols];
        let mut want_cols = vec![0f32; cols];
        let want = rows::softmax_row(&dots, 20.0, &col_scale, 7, &mut want_probs, &mut want_cols);
        let source = pseudo_random(cols, 7);
        for isa in isas {
            let mut probs = vec![0f32; cols];
            let mut col_total = vec![0f32; cols];
            let got = isa.softmax_row(&dots, 20.0, &col_scale, 7, &mut probs, &mut col_total);
            assert!(
                close(got.0, want.0, 1e-5) && close(got.1, want.1, 1e-4),
                "{isa:?}: {got:?} vs {want:?}"
            );
            for (a, b) in probs
                .iter()
                .zip(&want_probs)
                .chain(col_total.iter().zip(&want_cols))
            {
                assert!(close(*a, *b, 1e-5), "{isa:?}: {a} vs {b}");
            }
            // The scaling pass is the same arithmetic at every width: the same bits.
            let (mut scaled, mut plain) = (probs.clone(), probs.clone());
            isa.scale_row(&mut scaled, Some(&source), 0.3, &col_scale);
            rows::scale_row(&mut plain, Some(&source), 0.3, &col_scale);
            assert_eq!(scaled, plain, "{isa:?}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (rows, cols) = (100, 100);
        let dots = pseudo_random(rows * cols, 4);
        let scale = vec![7.0f32; rows];
        let scaled = ScaledDots {
            dots: &dots,
            rows,
            cols,
            row_scale: &scale,
            col_scale: &scale,
        };
        let previous = crate::parallel::num_threads();
        crate::parallel::set_num_threads(1);
        let serial = softmax_rows(&scaled, None).unwrap();
        crate::parallel::set_num_threads(3);
        let parallel = softmax_rows(&scaled, None).unwrap();
        crate::parallel::set_num_threads(previous);
        assert_eq!(serial, parallel);
    }

    #[test]
    fn non_finite_logits_propagate() {
        let dots = [1.0, f32::NAN, 0.5, 0.25];
        let ones = [1.0f32; 2];
        let scaled = ScaledDots {
            dots: &dots,
            rows: 2,
            cols: 2,
            row_scale: &ones,
            col_scale: &ones,
        };
        let got = softmax_rows(&scaled, None).unwrap();
        assert!(got.log_prob_positive[0].is_nan());
        assert!(got.log_prob_positive[1].is_finite());
    }

    #[test]
    fn accumulate_matches_the_formula() {
        let (rows, cols) = (40, 45);
        let probs = pseudo_random(rows * cols, 5);
        let start = pseudo_random(rows * cols, 6);
        let row_scale = pseudo_random(rows, 7);
        let col_scale = pseudo_random(cols, 8);
        let mut grad = start.clone();
        accumulate_scaled_probs(&mut grad, Some(&probs), &row_scale, &col_scale).unwrap();
        let mut in_place = probs.clone();
        accumulate_scaled_probs(&mut in_place, None, &row_scale, &col_scale).unwrap();
        for i in 0..rows {
            for j in 0..cols {
                let onehot = if i == j {
                    row_scale[i] * col_scale[i]
                } else {
                    0.0
                };
                let factor = row_scale[i] * col_scale[j];
                let want = start[i * cols + j] + factor * probs[i * cols + j] - onehot;
                assert!(close(grad[i * cols + j], want, 1e-6));
                let want = factor * probs[i * cols + j] - onehot;
                assert!(close(in_place[i * cols + j], want, 1e-6));
            }
        }
    }

    #[test]
    fn shapes_are_checked() {
        let dots = [0f32; 6];
        let ones = [1f32; 3];
        let wide = ScaledDots {
            dots: &dots,
            rows: 3,
            cols: 2,
            row_scale: &ones,
            col_scale: &ones[..2],
        };
        let err = softmax_rows(&wide, None).unwrap_err().to_string();
        assert!(err.contains("cols"), "{err}");
        let short = ScaledDots {
            dots: &dots[..5],
            rows: 2,
            cols: 3,
            row_scale: &ones[..2],
            col_scale: &ones,
        };
        assert!(softmax_rows(&short, None)
            .unwrap_err()
            .to_string()
            .contains("dots"));
        let mut grad = [0f32; 4];
        let err = accumulate_scaled_probs(&mut grad, None, &ones[..2], &ones).unwrap_err();
        assert!(err.to_string().contains("grad"));
    }
}
