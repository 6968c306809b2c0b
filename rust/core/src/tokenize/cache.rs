//! A bounded, thread-shared memo of the tokenizer model: pre-tokenized word -> token ids.
//!
//! Real text repeats a small set of words, and `Model::tokenize` on a word (WordPiece's
//! longest-prefix search, BPE merges) plus the `Token` strings it allocates is most of what
//! remains once normalisation is cheap. A model's output depends only on the word it is given
//! (BPE dropout aside, which the caller never routes here), so the memo is exact.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokenizers::{Model, ModelWrapper};

use super::tok_err;
use crate::error::Result;

/// Number of independently locked shards: enough that threads rarely meet on one lock.
const SHARDS: usize = 64;
/// Words longer than this (in bytes) are not memoised: they are rare, and each would pin
/// its own copy in memory.
const MAX_WORD_BYTES: usize = 128;
/// Most entries the memo holds; past this, misses are tokenised but no longer stored.
const MAX_ENTRIES: usize = 1 << 20;
/// Most bytes the memo accounts for (keys, ids and a per-entry overhead estimate).
const MAX_BYTES: usize = 64 << 20;
/// Rough per-entry cost beyond the key and ids: two boxed slices plus hash-table slack.
const ENTRY_OVERHEAD: usize = 48;

/// One shard, on its own cache lines so that locking it does not slow down its neighbours.
#[repr(align(128))]
struct Shard(RwLock<ShardMap>);

/// The entries of one shard and the bytes they account for.
struct ShardMap {
    map: HashMap<Box<str>, Box<[u32]>, WordHash>,
    bytes: usize,
}

/// Memo of `model.tokenize(word)` ids, shared by all threads (and by clones of the owning
/// tokenizer, whose model cannot change).
pub(super) struct WordCache {
    shards: Box<[Shard]>,
    /// Hashes words for both the shard choice and the shard's map.
    hasher: WordHash,
}

impl std::fmt::Debug for WordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl Default for WordCache {
    fn default() -> Self {
        let hasher = WordHash::random();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Shard(RwLock::new(ShardMap {
                        map: HashMap::with_hasher(hasher),
                        bytes: 0,
                    }))
                })
                .collect(),
            hasher,
        }
    }
}

impl WordCache {
    /// Appends the ids of `word` to `out`, tokenising (and memoising) it on a miss.
    pub(super) fn extend_ids(
        &self,
        word: &str,
        model: &ModelWrapper,
        out: &mut Vec<i64>,
    ) -> Result<()> {
        // hashbrown indexes buckets with the low bits and tags them with the top 7, so bits
        // 40.. pick the shard without skewing either within a shard.
        let shard = &self.shards[(self.hasher.hash_one(word) >> 40) as usize % SHARDS];
        if let Some(ids) = read(shard).map.get(word) {
            out.extend(ids.iter().map(|&id| i64::from(id)));
            return Ok(());
        }
        let tokens = model.tokenize(word).map_err(tok_err)?;
        out.extend(tokens.iter().map(|t| i64::from(t.id)));
        if word.len() <= MAX_WORD_BYTES {
            let cost = word.len() + 4 * tokens.len() + ENTRY_OVERHEAD;
            let mut shard = write(shard);
            let ShardMap { map, bytes } = &mut *shard;
            if map.len() < MAX_ENTRIES / SHARDS
                && *bytes + cost <= MAX_BYTES / SHARDS
                && !map.contains_key(word)
            {
                map.insert(word.into(), tokens.iter().map(|t| t.id).collect());
                *bytes += cost;
            }
        }
        Ok(())
    }

    /// Number of memoised words.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).map.len()).sum()
    }
}

/// A poisoned shard only means a thread panicked while holding it; every insert leaves the
/// map whole, so the entries are still valid.
fn read(shard: &Shard) -> RwLockReadGuard<'_, ShardMap> {
    shard.0.read().unwrap_or_else(|e| e.into_inner())
}

/// See [`read`].
fn write(shard: &Shard) -> RwLockWriteGuard<'_, ShardMap> {
    shard.0.write().unwrap_or_else(|e| e.into_inner())
}

/// A fast seeded hash for short strings (SipHash was a quarter of a cached lookup): 8 bytes at
/// a time through a folded 64x64->128 multiply, as foldhash and wyhash do. The random seed
/// per cache keeps collisions from being predictable; the cache's bounded size caps what an
/// adversarial input could cost anyway.
#[derive(Debug, Clone, Copy)]
struct WordHash {
    seed: u64,
}

impl WordHash {
    fn random() -> Self {
        Self {
            seed: RandomState::new().build_hasher().finish(),
        }
    }
}

impl BuildHasher for WordHash {
    type Hasher = WordHasher;

    fn build_hasher(&self) -> WordHasher {
        WordHasher { state: self.seed }
    }
}

/// The [`Hasher`] of [`WordHash`].
struct WordHasher {
    state: u64,
}

/// Odd 64-bit constants (digits of pi), as in foldhash.
const MUL_A: u64 = 0x243f_6a88_85a3_08d3;
const MUL_B: u64 = 0x1319_8a2e_0370_7344 | 1;

/// The xor of the two halves of the 128-bit product: every input bit reaches every output bit.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length goes in first so that zero padding of the last chunk cannot collide.
        let mut state = self.state ^ (bytes.len() as u64).wrapping_mul(MUL_B);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
            state = folded_multiply(state ^ word, MUL_A);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            state = folded_multiply(state ^ u64::from_le_bytes(last), MUL_A);
        }
        self.state = state;
    }

    fn write_u8(&mut self, byte: u8) {
        self.state = folded_multiply(self.state ^ u64::from(byte), MUL_A);
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.state, MUL_B)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_padding_and_seeds() {
        let h = WordHash { seed: 1 };
        assert_ne!(h.hash_one("a"), h.hash_one("a\0"));
        assert_ne!(h.hash_one("abcdefgh"), h.hash_one("abcdefgh\0"));
        assert_eq!(h.hash_one("word"), h.hash_one("word"));
        assert_ne!(h.hash_one("word"), WordHash { seed: 2 }.hash_one("word"));
    }
}
