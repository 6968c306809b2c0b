//! One AdamW step over a matrix whose gradient is row-sparse (a StaticEmbedding's: only the
//! rows of the batch's tokens have one).
//!
//! Dense AdamW still moves every row: a row without gradient keeps decaying its moments and
//! its weight, and its moments keep moving it. This step does exactly that for every row, in
//! one parallel pass over the three matrices (weights, first and second moments), reading a
//! gradient only for the rows that have one. torch would first scatter the rows into a
//! zero-filled dense gradient, run its AdamW kernel over it, and zero the rows again: four
//! passes, each its own parallel region. A row whose moments are still zero and that has no
//! gradient (no step has touched it yet) only decays, so the pass reads its moments and leaves
//! them unwritten.
//!
//! The arithmetic is torch.optim.AdamW's (decoupled weight decay, `lerp` for the first moment,
//! bias corrections on the step size and the root of the second moment), in the same order, in
//! float32 like torch's kernels; the scalars are computed in float64 as Python computes them.

use crate::error::{Error, Result};
use crate::parallel;

/// Rows per parallel task: a quarter-megabyte of each matrix at 256 floats per row, so a
/// vocabulary-sized matrix splits into hundreds of tasks that idle threads can take over.
const ROWS_PER_TASK: usize = 256;

/// The hyper-parameters of one AdamW step (torch.optim.AdamW's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWSettings {
    /// Learning rate of this step.
    pub lr: f64,
    /// Decay of the first moment (`betas[0]`).
    pub beta1: f64,
    /// Decay of the second moment (`betas[1]`).
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// The step number after this step (1 for the first), for the bias corrections.
    pub step: u64,
    /// Ascend instead of descend (the gradient is negated).
    pub maximize: bool,
}

/// The matrices one step updates, all `rows x dim`, row-major.
#[derive(Debug)]
pub struct AdamWState<'a> {
    /// The weights.
    pub param: &'a mut [f32],
    /// The first moment (`exp_avg`).
    pub exp_avg: &'a mut [f32],
    /// The second moment (`exp_avg_sq`).
    pub exp_avg_sq: &'a mut [f32],
    /// Width of a row.
    pub dim: usize,
}

/// One AdamW step of `state` with gradient `values[k]` (a `dim`-wide row) on row `rows[k]` and
/// zero on every other row. `rows` must be strictly increasing (a coalesced sparse gradient).
pub fn adamw_sparse_rows(
    state: AdamWState<'_>,
    rows: &[i64],
    values: &[f32],
    settings: &AdamWSettings,
) -> Result<()> {
    let AdamWState {
        param,
        exp_avg,
        exp_avg_sq,
        dim,
    } = state;
    if dim == 0 || param.len() % dim != 0 {
        return Err(Error::invalid_argument(
            "param",
            format!("{} values", param.len()),
            format!("a whole number of rows of dim = {dim}"),
        ));
    }
    for (name, len) in [("exp_avg", exp_avg.len()), ("exp_avg_sq", exp_avg_sq.len())] {
        if len != param.len() {
            return Err(Error::invalid_argument(
                name,
                format!("{len} values"),
                format!("as many as param ({})", param.len()),
            ));
        }
    }
    let num_rows = param.len() / dim;
    if values.len() != rows.len() * dim {
        return Err(Error::invalid_argument(
            "values",
            format!("{} values", values.len()),
            format!("one row of {dim} per row index ({} rows)", rows.len()),
        ));
    }
    let mut previous = -1i64;
    for &row in rows {
        if row <= previous || row >= num_rows as i64 {
            return Err(Error::invalid_argument(
                "rows",
                row,
                format!("strictly increasing row indices in 0..{num_rows} (a coalesced gradient)"),
            ));
        }
        previous = row;
    }
    if settings.step == 0 {
        return Err(Error::invalid_argument(
            "step",
            0,
            "the step number after this step (>= 1)",
        ));
    }

    let scalars = Scalars::new(settings);
    let chunk = ROWS_PER_TASK * dim;
    // The three matrices split alike; each task finds its own gradient rows.
    let mut tasks: Vec<_> = param
        .chunks_mut(chunk)
        .zip(exp_avg.chunks_mut(chunk))
        .zip(exp_avg_sq.chunks_mut(chunk))
        .enumerate()
        .collect();
    parallel::for_each_mut(&mut tasks, |(task, ((weights, m_chunk), v_chunk))| {
        let first_row = *task * ROWS_PER_TASK;
        let last_row = first_row + weights.len() / dim;
        let mut next = rows.partition_point(|&r| (r as usize) < first_row);
        let end = rows.partition_point(|&r| (r as usize) < last_row);
        for (local, ((w, m), v)) in weights
            .chunks_exact_mut(dim)
            .zip(m_chunk.chunks_exact_mut(dim))
            .zip(v_chunk.chunks_exact_mut(dim))
            .enumerate()
        {
            if next < end && rows[next] as usize == first_row + local {
                scalars.update_row(w, m, v, Some(&values[next * dim..(next + 1) * dim]));
                next += 1;
            } else {
                scalars.update_row(w, m, v, None);
            }
        }
    });
    Ok(())
}

/// The widest vector instructions the running CPU has for the row updates.
#[derive(Clone, Copy, Debug)]
enum Lanes {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Lanes {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }
}

/// Whether every value is `+0.0`, as one OR over the bits: a reduction the compiler vectorises,
/// unlike a loop that stops at the first non-zero. A row with moments is caught in its first
/// chunk. Moments start at `+0.0`; a `-0.0` (a negative first moment that underflowed) takes the
/// full update, which turns it into `+0.0`.
#[inline(always)]
fn all_zero(values: &[f32]) -> bool {
    values
        .chunks(64)
        .all(|chunk| chunk.iter().fold(0u32, |bits, &x| bits | x.to_bits()) == 0)
}

/// The per-step scalars, rounded to float32 where torch's kernels use them as float32.
struct Scalars {
    decay: f32,
    first_weight: f32,
    beta2: f32,
    second_weight: f32,
    bias_correction2_sqrt: f32,
    eps: f32,
    neg_step_size: f32,
    maximize: bool,
    lanes: Lanes,
}

impl Scalars {
    fn new(s: &AdamWSettings) -> Self {
        let step = s.step as f64;
        let bias_correction1 = 1.0 - s.beta1.powf(step);
        let bias_correction2 = 1.0 - s.beta2.powf(step);
        Self {
            decay: (1.0 - s.lr * s.weight_decay) as f32,
            first_weight: (1.0 - s.beta1) as f32,
            beta2: s.beta2 as f32,
            second_weight: (1.0 - s.beta2) as f32,
            bias_correction2_sqrt: bias_correction2.sqrt() as f32,
            eps: s.eps as f32,
            neg_step_size: (-(s.lr / bias_correction1)) as f32,
            maximize: s.maximize,
            lanes: Lanes::detect(),
        }
    }

    /// One row's update; `grad` is None for a row without gradient (zero).
    fn update_row(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], grad: Option<&[f32]>) {
        match self.lanes {
            // SAFETY (both arms): `Lanes::detect` found the instructions on this CPU.
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx512 => unsafe { self.update_row_avx512(w, m, v, grad) },
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx2 => unsafe { self.update_row_avx2(w, m, v, grad) },
            Lanes::Portable => self.update_row_body(w, m, v, grad),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn update_row_avx512(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], grad: Option<&[f32]>) {
        self.update_row_body(w, m, v, grad);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn update_row_avx2(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], grad: Option<&[f32]>) {
        self.update_row_body(w, m, v, grad);
    }

    /// The row update, inlined into each of the above so that the compiler vectorises it for
    /// their instructions (16 or 8 lanes; the baseline x86-64 build has 4). Square root and
    /// division are correctly rounded at every width, and nothing is fused, so every width
    /// gives the same bits.
    #[inline(always)]
    fn update_row_body(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], grad: Option<&[f32]>) {
        match grad {
            Some(grad) => {
                let sign = if self.maximize { -1.0 } else { 1.0 };
                for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grad)
                {
                    self.update(w, m, v, sign * g);
                }
            }
            None => {
                if all_zero(m) && all_zero(v) {
                    self.decay_only(w);
                    return;
                }
                for ((w, m), v) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                    self.update(w, m, v, 0.0);
                }
            }
        }
    }

    /// The update of a row whose moments are zero and whose gradient is zero (a row no step has
    /// given a gradient yet): the moments stay zero and the step term is `-lr * 0 / eps`, a zero
    /// that leaves every weight (signed zeros included) as it was, so only the decay is left.
    /// Bit for bit what [`Self::update`] computes, without reading the moments again or writing
    /// them: a batch touches a few thousand of a vocabulary's rows, so for many steps most rows
    /// are such rows, and the pass over them was most of the step's memory traffic.
    #[inline(always)]
    fn decay_only(&self, w: &mut [f32]) {
        if self.decay != 1.0 {
            w.iter_mut().for_each(|w| *w *= self.decay);
        }
    }

    #[inline(always)]
    fn update(&self, w: &mut f32, m: &mut f32, v: &mut f32, g: f32) {
        *w *= self.decay;
        // torch's lerp for weights below one half: start + weight * (end - start).
        *m += self.first_weight * (g - *m);
        *v = *v * self.beta2 + self.second_weight * g * g;
        let denom = v.sqrt() / self.bias_correction2_sqrt + self.eps;
        *w += self.neg_step_size * *m / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(step: u64) -> AdamWSettings {
        AdamWSettings {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            step,
            maximize: false,
        }
    }

    /// The dense formula in float64, row by row.
    fn dense_step(w: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f64], s: &AdamWSettings) {
        let (bc1, bc2) = (
            1.0 - s.beta1.powi(s.step as i32),
            1.0 - s.beta2.powi(s.step as i32),
        );
        for i in 0..w.len() {
            w[i] *= 1.0 - s.lr * s.weight_decay;
            m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * g[i];
            v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * g[i] * g[i];
            w[i] -= s.lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + s.eps);
        }
    }

    #[test]
    fn matches_the_dense_formula_over_several_steps() {
        let (num_rows, dim) = (600, 3);
        let start: Vec<f32> = (0..num_rows * dim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let (mut w, mut m, mut v) = (
            start.clone(),
            vec![0f32; start.len()],
            vec![0f32; start.len()],
        );
        let mut w64: Vec<f64> = start.iter().map(|&x| f64::from(x)).collect();
        let (mut m64, mut v64) = (vec![0f64; w64.len()], vec![0f64; w64.len()]);
        for step in 1..=4u64 {
            // Rows on both sides of task boundaries (256, 512) and a varying set per step.
            let rows: Vec<i64> = [0i64, 5, 255, 256, 300, 511, 512, 599]
                .into_iter()
                .filter(|r| !(*r as u64 + step).is_multiple_of(3))
                .collect();
            let values: Vec<f32> = (0..rows.len() * dim)
                .map(|i| ((i as u64 * 13 + step) % 7) as f32 - 3.0)
                .collect();
            let mut dense = vec![0f64; w64.len()];
            for (k, &r) in rows.iter().enumerate() {
                for c in 0..dim {
                    dense[r as usize * dim + c] = f64::from(values[k * dim + c]);
                }
            }
            let s = settings(step);
            let state = AdamWState {
                param: &mut w,
                exp_avg: &mut m,
                exp_avg_sq: &mut v,
                dim,
            };
            adamw_sparse_rows(state, &rows, &values, &s).unwrap();
            dense_step(&mut w64, &mut m64, &mut v64, &dense, &s);
        }
        for (a, b) in w.iter().zip(&w64) {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{a} vs {b}"
            );
        }
        for (a, b) in v.iter().zip(&v64) {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn rows_never_given_a_gradient_match_the_full_update_bit_for_bit() {
        let dim = 4;
        // Row 0: zero moments (never touched); row 1: moments from an earlier step; row 2: zero
        // moments but a gradient now; row 3: zero moments and signed-zero weights; row 4: a
        // first moment of -0.0 (an underflowed negative one) and signed-zero weights.
        let start_w = [
            0.5f32, -1.25, 3.0, 1e-30, 2.0, -0.5, 0.25, 7.0, 1.0, 2.0, 3.0, 4.0, 0.0, -0.0, 0.0,
            -0.0, 0.0, -0.0, 1.0, -2.0,
        ];
        let start_m = [
            0.0f32, 0.0, 0.0, 0.0, 0.1, -0.2, 1e-12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            -0.0, -0.0, -0.0, -0.0,
        ];
        let start_v = [
            0.0f32, 0.0, 0.0, 0.0, 0.01, 0.04, 0.0, 1e-30, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        for weight_decay in [0.0, 0.01] {
            let s = AdamWSettings {
                weight_decay,
                ..settings(3)
            };
            let (mut w, mut m, mut v) = (start_w.to_vec(), start_m.to_vec(), start_v.to_vec());
            let grad = [0.5f32, -0.25, 0.0, 1.0];
            let state = AdamWState {
                param: &mut w,
                exp_avg: &mut m,
                exp_avg_sq: &mut v,
                dim,
            };
            adamw_sparse_rows(state, &[2], &grad, &s).unwrap();
            // The reference: the per-element update on every row, no row skipped.
            let scalars = Scalars::new(&s);
            let (mut w_ref, mut m_ref, mut v_ref) =
                (start_w.to_vec(), start_m.to_vec(), start_v.to_vec());
            for i in 0..w_ref.len() {
                let g = if i / dim == 2 { grad[i % dim] } else { 0.0 };
                scalars.update(&mut w_ref[i], &mut m_ref[i], &mut v_ref[i], g);
            }
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&w),
                bits(&w_ref),
                "weights, weight_decay={weight_decay}"
            );
            assert_eq!(
                bits(&m),
                bits(&m_ref),
                "first moments, weight_decay={weight_decay}"
            );
            assert_eq!(
                bits(&v),
                bits(&v_ref),
                "second moments, weight_decay={weight_decay}"
            );
        }
    }

    #[test]
    fn every_instruction_set_gives_the_bits_of_the_scalar_update() {
        let dim = 1003; // not a multiple of any vector width: the tails run too
        let w0: Vec<f32> = (0..dim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let m0: Vec<f32> = (0..dim)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) * 1e-3)
            .collect();
        let v0: Vec<f32> = (0..dim).map(|i| (i % 17) as f32 * 1e-5).collect();
        let g: Vec<f32> = (0..dim)
            .map(|i| ((i * 7 % 19) as f32 - 9.0) / 3.0)
            .collect();
        let mut lanes = vec![Lanes::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                lanes.push(Lanes::Avx512);
            }
            if is_x86_feature_detected!("avx2") {
                lanes.push(Lanes::Avx2);
            }
        }
        for grad in [Some(g.as_slice()), None] {
            let mut scalars = Scalars::new(&settings(7));
            let (mut w_ref, mut m_ref, mut v_ref) = (w0.clone(), m0.clone(), v0.clone());
            for i in 0..dim {
                let gi = grad.map_or(0.0, |g| g[i]);
                scalars.update(&mut w_ref[i], &mut m_ref[i], &mut v_ref[i], gi);
            }
            for &lane in &lanes {
                scalars.lanes = lane;
                let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
                scalars.update_row(&mut w, &mut m, &mut v, grad);
                let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&w), bits(&w_ref), "{lane:?}");
                assert_eq!(bits(&m), bits(&m_ref), "{lane:?}");
                assert_eq!(bits(&v), bits(&v_ref), "{lane:?}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let (mut w, mut m, mut v) = (vec![0f32; 6], vec![0f32; 6], vec![0f32; 6]);
        let mut run = |rows: &[i64], values: &[f32], step: u64| {
            let state = AdamWState {
                param: &mut w,
                exp_avg: &mut m,
                exp_avg_sq: &mut v,
                dim: 2,
            };
            adamw_sparse_rows(state, rows, values, &settings(step)).map_err(|e| e.to_string())
        };
        assert!(run(&[1, 0], &[0.0; 4], 1).unwrap_err().contains("rows"));
        assert!(run(&[3], &[0.0; 2], 1).unwrap_err().contains("rows"));
        assert!(run(&[1], &[0.0; 3], 1).unwrap_err().contains("values"));
        assert!(run(&[1], &[0.0; 2], 0).unwrap_err().contains("step"));
        assert!(run(&[0, 2], &[1.0; 4], 1).is_ok());
    }
}
