//! Register-tiled dot products between packed query and corpus panels.
//!
//! Both sides are stored as "panels" of 32-bit words, element-major: a query panel holds
//! `mr` rows as `[depth][mr]` (`mr` = [`Isa::mr`]), a corpus panel [`NR`] rows as
//! `[depth][NR]` (short panels are zero-padded). One micro-kernel call multiplies a query panel
//! with [`Isa::tile_panels`] consecutive corpus panels into an `mr x (panels * NR)` tile of
//! scores, keeping every accumulator in a vector register: 12 rows of two 512-bit registers
//! with AVX-512 (each query value is broadcast straight from memory into the FMA), 6 rows of
//! two 256-bit registers with AVX2. The corpus panels of a block stay in L2 while every query
//! panel streams past them, and the tile never leaves L1.
//!
//! Two element kinds share that layout:
//! - `f32` words, multiplied with FMA (float search);
//! - pairs of `i16` packed in one word, multiplied with `vpmaddwd` / `vpdpwssd` into `i32`
//!   sums (int8 and uint8 search on CPUs without AVX-512 VNNI: exact integer dot products);
//! - quads of bytes packed in one word, one side unsigned and one signed, multiplied with
//!   `vpdpbusd` (AVX-512 VNNI: 64 byte products per instruction, four times the float rate)
//!   into exact `i32` sums.
//!
//! Every score is accumulated in the same order (one fused multiply-add per element, first
//! to last) whatever the kernel, block sizes or thread split, so results do not depend on
//! them. Without AVX2+FMA a portable loop computes the same tiles.

/// Corpus rows per panel.
pub(crate) const NR: usize = 16;
/// Scores in the largest tile any kernel writes.
const TILE_MAX: usize = 384;

/// A tile of scores: row `i` (query `i` of the panel) at `[i * w..(i + 1) * w]` with
/// `w = tile_panels * NR`; only the first [`Isa::mr`] rows are written.
pub(crate) type Tile<S> = [S; TILE_MAX];

/// Which micro-kernel implementation this CPU runs; detected once per search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 (F, BW and VNNI, x86-64).
    Avx512,
    /// AVX2 and FMA (x86-64).
    Avx2Fma,
    /// Anything else: plain Rust loops.
    Portable,
}

impl Isa {
    /// The best implementation the running CPU supports.
    ///
    /// `EMBEDFORGE_SEARCH_ISA=avx2` or `=portable` caps it (to compare kernels or rule one out).
    pub fn detect() -> Self {
        let cap = std::env::var("EMBEDFORGE_SEARCH_ISA").unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        {
            if cap != "avx2"
                && cap != "portable"
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                return Self::Avx512;
            }
            if cap != "portable"
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
            {
                return Self::Avx2Fma;
            }
        }
        let _ = cap;
        Self::Portable
    }

    /// Query rows per panel (and tile rows) for this kernel.
    pub fn mr(self) -> usize {
        match self {
            Self::Avx512 => avx512::MR,
            Self::Avx2Fma | Self::Portable => AVX2_MR,
        }
    }

    /// Whether the integer kernels run on AVX-512 VNNI here (`i16` pairs at twice the float
    /// rate, byte quads at four times); without it int8 search uses `i16` pairs.
    pub fn has_vnni(self) -> bool {
        self == Self::Avx512
    }

    /// Consecutive corpus panels one kernel call reads (tile columns = this x [`NR`]).
    pub fn tile_panels(self) -> usize {
        match self {
            Self::Avx512 => 2,
            Self::Avx2Fma | Self::Portable => 1,
        }
    }
}

/// Query rows per panel of the AVX2 and portable kernels.
const AVX2_MR: usize = 6;

/// Packs `rows` (each `depth` words, produced by `row_words`) into panels of `height` rows.
///
/// `out` is resized to `panels * depth * height`; padding rows are zero. Each panel's rows are
/// first written contiguously and then transposed, so every store of the transpose fills
/// consecutive words (scattering each row straight into the panel would touch `depth`
/// different cache lines per row).
#[inline(always)] // so that callers compiled for wider SIMD pack with it too
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
    let mut rows = vec![W::default(); height * depth];
    for (panel, dst) in out.chunks_exact_mut(depth * height).enumerate() {
        let first = panel * height;
        let filled = height.min(n_rows - first);
        for (lane, row) in rows.chunks_exact_mut(depth).enumerate() {
            if lane < filled {
                row_words(first + lane, row);
            } else {
                row.fill(W::default());
            }
        }
        for (p, words) in dst.chunks_exact_mut(height).enumerate() {
            for (lane, w) in words.iter_mut().enumerate() {
                *w = rows[lane * depth + p];
            }
        }
    }
}

/// `tile[i * w + t * NR + j] = sum_p a[p * mr + i] * b[(t * depth + p) * NR + j]` over `depth`
/// float words, for corpus panels `t < tile_panels` (`w = tile_panels * NR`).
#[inline]
pub(crate) fn tile_f32(isa: Isa, depth: usize, a: &[f32], b: &[f32], tile: &mut Tile<f32>) {
    assert!(a.len() >= depth * isa.mr() && b.len() >= depth * NR * isa.tile_panels());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx512 is only chosen after runtime detection; the slice lengths were
        // checked above, so the kernel reads within bounds.
        Isa::Avx512 => unsafe { avx512::tile_f32(depth, a.as_ptr(), b.as_ptr(), tile) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 and FMA.
        Isa::Avx2Fma => unsafe { avx2::tile_f32(depth, a.as_ptr(), b.as_ptr(), tile) },
        _ => portable_tile(depth, a, b, tile, |x, y, acc| x.mul_add(y, acc)),
    }
}

/// As [`tile_f32`] with `dot2(a, b)` for `a * b`, where each word holds two `i16`.
#[inline]
pub(crate) fn tile_i16_pairs(isa: Isa, depth: usize, a: &[u32], b: &[u32], tile: &mut Tile<i32>) {
    assert!(a.len() >= depth * isa.mr() && b.len() >= depth * NR * isa.tile_panels());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `tile_f32`.
        Isa::Avx512 => unsafe {
            avx512::tile_integer::<{ avx512::I16_PAIRS }>(depth, a.as_ptr(), b.as_ptr(), tile)
        },
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

/// Which byte operand of [`tile_byte_quads`] is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignedSide {
    /// Query bytes are `i8`, corpus bytes `u8`.
    Query,
    /// Query bytes are `u8`, corpus bytes `i8`.
    Corpus,
}

/// As [`tile_f32`] with `dot4(a, b)` for `a * b`, where each word holds four bytes (first byte
/// lowest), signed on the `signed` side and unsigned on the other.
#[inline]
pub(crate) fn tile_byte_quads(
    isa: Isa,
    signed: SignedSide,
    depth: usize,
    a: &[u32],
    b: &[u32],
    tile: &mut Tile<i32>,
) {
    assert!(a.len() >= depth * isa.mr() && b.len() >= depth * NR * isa.tile_panels());
    match (isa, signed) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `tile_f32`.
        (Isa::Avx512, SignedSide::Query) => unsafe {
            avx512::tile_integer::<{ avx512::QUADS_QUERY_SIGNED }>(
                depth,
                a.as_ptr(),
                b.as_ptr(),
                tile,
            )
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `tile_f32`.
        (Isa::Avx512, SignedSide::Corpus) => unsafe {
            avx512::tile_integer::<{ avx512::QUADS_CORPUS_SIGNED }>(
                depth,
                a.as_ptr(),
                b.as_ptr(),
                tile,
            )
        },
        _ => portable_tile(depth, a, b, tile, |x, y, acc| {
            let (x, y) = (x.to_le_bytes(), y.to_le_bytes());
            let dot: i32 = (0..4)
                .map(|i| match signed {
                    SignedSide::Query => i32::from(x[i] as i8) * i32::from(y[i]),
                    SignedSide::Corpus => i32::from(x[i]) * i32::from(y[i] as i8),
                })
                .sum();
            acc.wrapping_add(dot)
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

/// The portable kernel, on panels of [`AVX2_MR`] query rows.
fn portable_tile<W: Copy, S: Copy + Default>(
    depth: usize,
    a: &[W],
    b: &[W],
    tile: &mut Tile<S>,
    fma: impl Fn(W, W, S) -> S,
) {
    const MR: usize = AVX2_MR;
    let mut acc = [S::default(); MR * NR];
    for p in 0..depth {
        let (ap, bp) = (&a[p * MR..p * MR + MR], &b[p * NR..p * NR + NR]);
        for (i, &x) in ap.iter().enumerate() {
            for (j, &y) in bp.iter().enumerate() {
                acc[i * NR + j] = fma(x, y, acc[i * NR + j]);
            }
        }
    }
    tile[..MR * NR].copy_from_slice(&acc);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Tile, AVX2_MR as MR, NR};

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` must hold `depth * MR` and `b` `depth * NR` floats.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_f32(
        depth: usize,
        a: *const f32,
        b: *const f32,
        tile: &mut Tile<f32>,
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
        tile: &mut Tile<i32>,
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Tile, NR};

    /// Query rows per panel: 12 rows x 2 registers = 24 accumulators, and per element only 2
    /// vector loads for 24 FMAs (the query values are broadcast operands of the FMAs).
    pub(super) const MR: usize = 12;
    const W: usize = 2 * NR;

    /// # Safety
    /// The CPU must support AVX-512F; `a` must hold `depth * MR` and `b` `2 * depth * NR` floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_f32(
        depth: usize,
        a: *const f32,
        b: *const f32,
        tile: &mut Tile<f32>,
    ) {
        let mut lo = [_mm512_setzero_ps(); MR];
        let mut hi = [_mm512_setzero_ps(); MR];
        for p in 0..depth {
            // SAFETY: p < depth, so every read stays inside the panels (caller's contract).
            unsafe {
                let b0 = _mm512_loadu_ps(b.add(p * NR));
                let b1 = _mm512_loadu_ps(b.add((depth + p) * NR));
                let ap = a.add(p * MR);
                for i in 0..MR {
                    let x = _mm512_set1_ps(*ap.add(i));
                    lo[i] = _mm512_fmadd_ps(x, b0, lo[i]);
                    hi[i] = _mm512_fmadd_ps(x, b1, hi[i]);
                }
            }
        }
        let out = tile.as_mut_ptr();
        for i in 0..MR {
            // SAFETY: MR rows of W = 32 floats fit in the tile.
            unsafe {
                _mm512_storeu_ps(out.add(i * W), lo[i]);
                _mm512_storeu_ps(out.add(i * W + NR), hi[i]);
            }
        }
    }

    /// The integer products an integer tile multiplies words with.
    pub(super) const I16_PAIRS: u8 = 0;
    /// Byte quads, query bytes signed and corpus bytes unsigned.
    pub(super) const QUADS_QUERY_SIGNED: u8 = 1;
    /// Byte quads, query bytes unsigned and corpus bytes signed.
    pub(super) const QUADS_CORPUS_SIGNED: u8 = 2;

    /// An integer tile: `vpdpwssd` on `i16` pairs or `vpdpbusd` on byte quads (`KIND`).
    ///
    /// # Safety
    /// The CPU must support AVX-512F, BW and VNNI; `a` must hold `depth * MR` and `b`
    /// `2 * depth * NR` words.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile_integer<const KIND: u8>(
        depth: usize,
        a: *const u32,
        b: *const u32,
        tile: &mut Tile<i32>,
    ) {
        // `vpdpbusd` multiplies its first operand's bytes as unsigned.
        let dot = |acc, x, row| match KIND {
            I16_PAIRS => _mm512_dpwssd_epi32(acc, x, row),
            QUADS_QUERY_SIGNED => _mm512_dpbusd_epi32(acc, row, x),
            _ => _mm512_dpbusd_epi32(acc, x, row),
        };
        let mut lo = [_mm512_setzero_si512(); MR];
        let mut hi = [_mm512_setzero_si512(); MR];
        for p in 0..depth {
            // SAFETY: p < depth, so every read stays inside the panels (caller's contract).
            unsafe {
                let b0 = _mm512_loadu_si512(b.add(p * NR).cast());
                let b1 = _mm512_loadu_si512(b.add((depth + p) * NR).cast());
                let ap = a.add(p * MR);
                for i in 0..MR {
                    let x = _mm512_set1_epi32(*ap.add(i) as i32);
                    lo[i] = dot(lo[i], x, b0);
                    hi[i] = dot(hi[i], x, b1);
                }
            }
        }
        let out = tile.as_mut_ptr();
        for i in 0..MR {
            // SAFETY: MR rows of W = 32 ints fit in the tile.
            unsafe {
                _mm512_storeu_si512(out.add(i * W).cast(), lo[i]);
                _mm512_storeu_si512(out.add(i * W + NR).cast(), hi[i]);
            }
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

    /// Every kernel this CPU can run, the detected one first.
    fn kernels() -> Vec<Isa> {
        let mut isas = vec![Isa::detect()];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            isas.push(Isa::Avx2Fma);
        }
        isas.push(Isa::Portable);
        isas.dedup();
        isas
    }

    /// The first `n` of `rows` (each `depth` long, row-major) packed in panels of `height` rows.
    fn panel<W: Copy + Default>(rows: &[W], depth: usize, n: usize, height: usize) -> Vec<W> {
        let mut out = Vec::new();
        pack_panels(n, depth, height, &mut out, |r, row| {
            row.copy_from_slice(&rows[r * depth..(r + 1) * depth]);
        });
        out
    }

    /// Test data: enough query rows and corpus rows for any kernel's tile.
    const ROWS: usize = 32;

    #[test]
    fn float_tiles_match_f64_and_agree_bit_for_bit_across_kernels() {
        let depth = 37;
        let (q, c) = (words(ROWS * depth, 1), words(ROWS * depth, 2));
        let b = panel(&c, depth, ROWS, NR);
        let mut first: Option<Vec<f32>> = None;
        for isa in kernels() {
            let (mr, w) = (isa.mr(), isa.tile_panels() * NR);
            let mut tile = [0.0f32; TILE_MAX];
            tile_f32(isa, depth, &panel(&q, depth, mr, mr), &b, &mut tile);
            for i in 0..mr {
                for j in 0..w {
                    let exact: f64 = (0..depth)
                        .map(|p| f64::from(q[i * depth + p]) * f64::from(c[j * depth + p]))
                        .sum();
                    let got = tile[i * w + j];
                    let err = (f64::from(got) - exact).abs();
                    assert!(err < 1e-4, "{isa:?}: {got} vs {exact}");
                }
            }
            // Same accumulation order in every kernel: the scores they share are identical.
            let shared: Vec<f32> = (0..AVX2_MR)
                .flat_map(|i| tile[i * w..i * w + NR].to_vec())
                .collect();
            match &first {
                Some(f) => assert_eq!(&shared, f, "{isa:?}"),
                None => first = Some(shared),
            }
        }
    }

    #[test]
    fn integer_tiles_are_exact_in_every_kernel() {
        let depth = 37;
        let q: Vec<u32> = (0..depth * ROWS)
            .map(|i| pack_pair((i % 255) as i16 - 128, 127 - (i % 256) as i16))
            .collect();
        let c: Vec<u32> = (0..depth * ROWS)
            .map(|i| pack_pair(255 - (i * 7 % 256) as i16, (i * 3 % 256) as i16 - 128))
            .collect();
        let b = panel(&c, depth, ROWS, NR);
        for isa in kernels() {
            let (mr, w) = (isa.mr(), isa.tile_panels() * NR);
            let mut tile = [0i32; TILE_MAX];
            tile_i16_pairs(isa, depth, &panel(&q, depth, mr, mr), &b, &mut tile);
            for i in 0..mr {
                for j in 0..w {
                    let expected: i32 = (0..depth)
                        .map(|p| {
                            let (x0, x1) = unpack_pair(q[i * depth + p]);
                            let (y0, y1) = unpack_pair(c[j * depth + p]);
                            x0 * y0 + x1 * y1
                        })
                        .sum();
                    assert_eq!(tile[i * w + j], expected, "{isa:?} row {i} col {j}");
                }
            }
        }
    }

    #[test]
    fn byte_quad_tiles_are_exact_in_every_kernel() {
        let depth = 29;
        let word = |i: usize, mul: usize| {
            u32::from_le_bytes(std::array::from_fn(|b| ((i * 4 + b) * mul % 256) as u8))
        };
        let q: Vec<u32> = (0..depth * ROWS).map(|i| word(i, 7)).collect();
        let c: Vec<u32> = (0..depth * ROWS).map(|i| word(i, 13)).collect();
        let b = panel(&c, depth, ROWS, NR);
        for isa in kernels() {
            for signed in [SignedSide::Query, SignedSide::Corpus] {
                let (mr, w) = (isa.mr(), isa.tile_panels() * NR);
                let mut tile = [0i32; TILE_MAX];
                tile_byte_quads(isa, signed, depth, &panel(&q, depth, mr, mr), &b, &mut tile);
                for i in 0..mr {
                    for j in 0..w {
                        let expected: i32 = (0..depth)
                            .flat_map(|p| {
                                let x = q[i * depth + p].to_le_bytes();
                                let y = c[j * depth + p].to_le_bytes();
                                (0..4).map(move |t| match signed {
                                    SignedSide::Query => i32::from(x[t] as i8) * i32::from(y[t]),
                                    SignedSide::Corpus => i32::from(x[t]) * i32::from(y[t] as i8),
                                })
                            })
                            .sum();
                        let got = tile[i * w + j];
                        assert_eq!(got, expected, "{isa:?} {signed:?} row {i} col {j}");
                    }
                }
            }
        }
    }
}
