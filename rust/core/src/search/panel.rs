//! Register-tiled dot products between packed query and corpus panels.
//!
//! Both sides are stored as "panels" of 32-bit words, element-major: a query panel holds
//! [`MR`] rows as `[depth][MR]`, a corpus panel [`NR`] rows as `[depth][NR]` (short panels
//! are zero-padded). One micro-kernel call produces an `MR x NR` tile of scores from two
//! panels, keeping all 12 accumulators in AVX registers; the corpus panels of a block stay in
//! L2 while every query panel streams past them, and the tile never leaves L1.
//!
//! Two element kinds share that layout:
//! - `f32` words, multiplied with FMA (float search);
//! - pairs of `i16` packed in one word, multiplied with `vpmaddwd` into `i32` sums (int8 and
//!   uint8 search: exact integer dot products).
//!
//! Every score is accumulated in the same order whatever the block sizes or thread split, so
//! results do not depend on them. Without AVX2+FMA a portable loop computes the same tiles.

/// Query rows per panel (and tile rows).
pub(crate) const MR: usize = 6;
/// Corpus rows per panel (and tile columns).
pub(crate) const NR: usize = 16;

/// Which micro-kernel implementation this CPU runs; detected once per search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX2 and FMA (x86-64).
    Avx2Fma,
    /// Anything else: plain Rust loops.
    Portable,
}

impl Isa {
    /// The best implementation the running CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Self::Avx2Fma;
            }
        }
        Self::Portable
    }
}

/// Packs `rows` (each `depth` words, produced by `row_words`) into panels of `height` rows.
///
/// `out` is resized to `panels * depth * height`; padding rows are zero.
pub(crate) fn pack_panels<W: Copy + Default>(
    n_rows: usize,
    depth: usize,
    height: usize,
    out: &mut Vec<W>,
    mut row_words: impl FnMut(usize, &mut [W]),
) {
    let panels = n_rows.div_ceil(height);
    out.clear();
    out.resize(panels * depth * height, W::default());
    let mut row = vec![W::default(); depth];
    for r in 0..n_rows {
        row_words(r, &mut row);
        let (panel, lane) = (r / height, r % height);
        let base = panel * depth * height + lane;
        for (p, &w) in row.iter().enumerate() {
            out[base + p * height] = w;
        }
    }
}

/// `tile[i * NR + j] = sum_p a[p * MR + i] * b[p * NR + j]` over `depth` float words.
#[inline]
pub(crate) fn tile_f32(isa: Isa, depth: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
    assert!(a.len() >= depth * MR && b.len() >= depth * NR);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2Fma is only chosen after runtime detection; the slice lengths were
        // checked above, so the kernel reads within bounds.
        Isa::Avx2Fma => unsafe { avx2::tile_f32(depth, a.as_ptr(), b.as_ptr(), tile) },
        _ => portable_tile(depth, a, b, tile, |x, y, acc| x.mul_add(y, acc)),
    }
}

/// `tile[i * NR + j] = sum_p dot2(a[p * MR + i], b[p * NR + j])` where each word holds two `i16`.
#[inline]
pub(crate) fn tile_i16_pairs(
    isa: Isa,
    depth: usize,
    a: &[u32],
    b: &[u32],
    tile: &mut [i32; MR * NR],
) {
    assert!(a.len() >= depth * MR && b.len() >= depth * NR);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `tile_f32`.
        Isa::Avx2Fma => unsafe { avx2::tile_i16_pairs(depth, a.as_ptr(), b.as_ptr(), tile) },
        _ => portable_tile(depth, a, b, tile, |x, y, acc| {
            let (x0, x1) = unpack_pair(x);
            let (y0, y1) = unpack_pair(y);
            acc.wrapping_add(x0 * y0 + x1 * y1)
        }),
    }
}

/// Two `i16` values in one word (low half first), as the AVX2 kernel reads them.
#[inline]
pub(crate) fn pack_pair(lo: i16, hi: i16) -> u32 {
    u32::from(lo as u16) | (u32::from(hi as u16) << 16)
}

#[inline]
fn unpack_pair(w: u32) -> (i32, i32) {
    (
        i32::from(w as u16 as i16),
        i32::from((w >> 16) as u16 as i16),
    )
}

fn portable_tile<W: Copy, S: Copy + Default>(
    depth: usize,
    a: &[W],
    b: &[W],
    tile: &mut [S; MR * NR],
    fma: impl Fn(W, W, S) -> S,
) {
    let mut acc = [S::default(); MR * NR];
    for p in 0..depth {
        let (ap, bp) = (&a[p * MR..p * MR + MR], &b[p * NR..p * NR + NR]);
        for (i, &x) in ap.iter().enumerate() {
            for (j, &y) in bp.iter().enumerate() {
                acc[i * NR + j] = fma(x, y, acc[i * NR + j]);
            }
        }
    }
    *tile = acc;
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` must hold `depth * MR` and `b` `depth * NR` floats.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_f32(
        depth: usize,
        a: *const f32,
        b: *const f32,
        tile: &mut [f32; MR * NR],
    ) {
        let mut c00 = _mm256_setzero_ps();
        let (mut c01, mut c10, mut c11, mut c20, mut c21) = (c00, c00, c00, c00, c00);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (c00, c00, c00, c00, c00, c00);
        for p in 0..depth {
            // SAFETY: p < depth, so both reads stay inside the panels (caller's contract).
            unsafe {
                let b0 = _mm256_loadu_ps(b.add(p * NR));
                let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
                let ap = a.add(p * MR);
                macro_rules! step {
                    ($i:literal, $lo:ident, $hi:ident) => {
                        let x = _mm256_broadcast_ss(&*ap.add($i));
                        $lo = _mm256_fmadd_ps(x, b0, $lo);
                        $hi = _mm256_fmadd_ps(x, b1, $hi);
                    };
                }
                step!(0, c00, c01);
                step!(1, c10, c11);
                step!(2, c20, c21);
                step!(3, c30, c31);
                step!(4, c40, c41);
                step!(5, c50, c51);
            }
        }
        let out = tile.as_mut_ptr();
        // SAFETY: the tile holds MR * NR floats; each row writes its NR = 16 floats.
        unsafe {
            macro_rules! store {
                ($i:literal, $lo:ident, $hi:ident) => {
                    _mm256_storeu_ps(out.add($i * NR), $lo);
                    _mm256_storeu_ps(out.add($i * NR + 8), $hi);
                };
            }
            store!(0, c00, c01);
            store!(1, c10, c11);
            store!(2, c20, c21);
            store!(3, c30, c31);
            store!(4, c40, c41);
            store!(5, c50, c51);
        }
    }

    /// # Safety
    /// The CPU must support AVX2; `a` must hold `depth * MR` and `b` `depth * NR` words.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_i16_pairs(
        depth: usize,
        a: *const u32,
        b: *const u32,
        tile: &mut [i32; MR * NR],
    ) {
        let mut c00 = _mm256_setzero_si256();
        let (mut c01, mut c10, mut c11, mut c20, mut c21) = (c00, c00, c00, c00, c00);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (c00, c00, c00, c00, c00, c00);
        for p in 0..depth {
            // SAFETY: p < depth, so both reads stay inside the panels (caller's contract).
            unsafe {
                let b0 = _mm256_loadu_si256(b.add(p * NR).cast());
                let b1 = _mm256_loadu_si256(b.add(p * NR + 8).cast());
                let ap = a.add(p * MR);
                macro_rules! step {
                    ($i:literal, $lo:ident, $hi:ident) => {
                        let x = _mm256_set1_epi32(*ap.add($i) as i32);
                        $lo = _mm256_add_epi32($lo, _mm256_madd_epi16(x, b0));
                        $hi = _mm256_add_epi32($hi, _mm256_madd_epi16(x, b1));
                    };
                }
                step!(0, c00, c01);
                step!(1, c10, c11);
                step!(2, c20, c21);
                step!(3, c30, c31);
                step!(4, c40, c41);
                step!(5, c50, c51);
            }
        }
        let out = tile.as_mut_ptr();
        // SAFETY: the tile holds MR * NR ints; each row writes its NR = 16 ints.
        unsafe {
            macro_rules! store {
                ($i:literal, $lo:ident, $hi:ident) => {
                    _mm256_storeu_si256(out.add($i * NR).cast(), $lo);
                    _mm256_storeu_si256(out.add($i * NR + 8).cast(), $hi);
                };
            }
            store!(0, c00, c01);
            store!(1, c10, c11);
            store!(2, c20, c21);
            store!(3, c30, c31);
            store!(4, c40, c41);
            store!(5, c50, c51);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn simd_and_portable_tiles_agree() {
        let depth = 37;
        let (a, b) = (words(depth * MR, 1), words(depth * NR, 2));
        let mut reference = [0.0f32; MR * NR];
        for i in 0..MR {
            for j in 0..NR {
                let exact: f64 = (0..depth)
                    .map(|p| f64::from(a[p * MR + i]) * f64::from(b[p * NR + j]))
                    .sum();
                reference[i * NR + j] = exact as f32;
            }
        }
        for isa in [Isa::detect(), Isa::Portable] {
            let mut tile = [0.0f32; MR * NR];
            tile_f32(isa, depth, &a, &b, &mut tile);
            for (x, y) in tile.iter().zip(&reference) {
                assert!((x - y).abs() < 1e-4, "{isa:?}: {x} vs {y}");
            }
        }

        let pa: Vec<u32> = (0..depth * MR)
            .map(|i| pack_pair((i % 255) as i16 - 128, 127 - (i % 256) as i16))
            .collect();
        let pb: Vec<u32> = (0..depth * NR)
            .map(|i| pack_pair(255 - (i * 7 % 256) as i16, (i * 3 % 256) as i16 - 128))
            .collect();
        let mut expected = [0i32; MR * NR];
        for i in 0..MR {
            for j in 0..NR {
                expected[i * NR + j] = (0..depth)
                    .map(|p| {
                        let (x0, x1) = unpack_pair(pa[p * MR + i]);
                        let (y0, y1) = unpack_pair(pb[p * NR + j]);
                        x0 * y0 + x1 * y1
                    })
                    .sum();
            }
        }
        for isa in [Isa::detect(), Isa::Portable] {
            let mut tile = [0i32; MR * NR];
            tile_i16_pairs(isa, depth, &pa, &pb, &mut tile);
            assert_eq!(tile, expected, "{isa:?}");
        }
    }
}
