//! The hash of the term tables: vocabulary lookups happen once per token while indexing, where
//! SipHash would be a sizeable share of the work.

use std::hash::{BuildHasher, Hasher, RandomState};

/// A seeded multiply-and-fold hash over 8-byte words. The random seed per table keeps a corpus
/// crafted to collide from degrading one index into linear probing everywhere.
#[derive(Clone, Copy, Debug)]
pub(super) struct TermHash {
    seed: u64,
}

impl TermHash {
    /// A hash with a fresh random seed.
    pub(super) fn random() -> Self {
        Self {
            seed: RandomState::new().build_hasher().finish(),
        }
    }
}

impl BuildHasher for TermHash {
    type Hasher = TermHasher;

    fn build_hasher(&self) -> TermHasher {
        TermHasher { state: self.seed }
    }
}

/// The [`Hasher`] of [`TermHash`].
pub(super) struct TermHasher {
    state: u64,
}

/// Odd constants with well-mixed bits (the fractional digits of e and of sqrt(2)).
const K0: u64 = 0xb7e1_5162_8aed_2a6b;
const K1: u64 = 0x6a09_e667_f3bc_c909;

/// High and low halves of the 128-bit product, xor-ed: each input bit moves many output bits.
#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let wide = u128::from(a) * u128::from(b);
    (wide as u64) ^ ((wide >> 64) as u64)
}

impl Hasher for TermHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Mixing in the length keeps "ab" and "ab\0" apart after zero padding.
        let mut state = self.state.wrapping_add(bytes.len() as u64).wrapping_mul(K1);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            state = mix(
                state ^ u64::from_le_bytes(word.try_into().expect("8 bytes")),
                K0,
            );
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            state = mix(state ^ u64::from_le_bytes(last), K0);
        }
        self.state = state;
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        // `str`'s Hash writes a 0xff terminator after the bytes.
        self.state = mix(self.state ^ u64::from(byte), K0);
    }

    #[inline]
    fn finish(&self) -> u64 {
        mix(self.state, K1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_terms_hash_equal_and_padding_does_not_collide() {
        let h = TermHash { seed: 7 };
        assert_eq!(h.hash_one("token"), h.hash_one("token"));
        assert_ne!(h.hash_one("ab"), h.hash_one("ab\0"));
        assert_ne!(h.hash_one("abcdefgh"), h.hash_one("abcdefgh\0"));
        assert_ne!(h.hash_one("x"), TermHash { seed: 8 }.hash_one("x"));
    }
}
