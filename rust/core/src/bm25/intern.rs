//! A compact word -> id table (an interner): the words live back to back in one byte arena and
//! the open-addressing slots hold only a hash tag and an id.
//!
//! Indexing looks a word up for every token. A `HashMap<Box<str>, u32>` spends most of that
//! time waiting on memory: 24-byte buckets plus a separately allocated key per word. Here a
//! probe reads one 8-byte slot, and a hit one contiguous word, so a vocabulary of tens of
//! thousands of words stays in a core's L2 cache.

use std::hash::{BuildHasher, Hasher};

use super::hash::TermHash;

/// Slots are kept at most half full, so probe runs stay short.
const MAX_LOAD_NUM: usize = 1;
const MAX_LOAD_DEN: usize = 2;

/// Distinct words numbered in order of first insertion.
#[derive(Clone)]
pub(super) struct Interner {
    hasher: TermHash,
    /// 0 = empty; else the hash's top 32 bits above `id + 1`.
    slots: Vec<u64>,
    /// `ends[id]`: where word `id` ends in `bytes` (it starts where the previous one ends).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("words", &self.len())
            .finish()
    }
}

impl Default for Interner {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Interner {
    /// An empty table with room for `words` words before it grows.
    pub fn with_capacity(words: usize) -> Self {
        let slots = (words * MAX_LOAD_DEN / MAX_LOAD_NUM)
            .next_power_of_two()
            .max(16);
        Self {
            hasher: TermHash::random(),
            slots: vec![0; slots],
            ends: Vec::with_capacity(words),
            bytes: Vec::new(),
        }
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Word `id`.
    pub fn word(&self, id: u32) -> &str {
        // Only whole `&str`s are ever appended, so every word's bytes are valid UTF-8.
        std::str::from_utf8(self.word_bytes(id)).expect("interned words are UTF-8")
    }

    /// Word `id`'s bytes (probing compares bytes, skipping the UTF-8 check of [`Self::word`]).
    #[inline]
    fn word_bytes(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.bytes[start..self.ends[id]]
    }

    /// All words in id order.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).map(|id| self.word(id))
    }

    /// The id of `word`, if present.
    #[inline]
    pub fn get(&self, word: &str) -> Option<u32> {
        let hash = self.hash(word);
        match self.probe(word, hash) {
            Probe::Found(id) => Some(id),
            Probe::Empty(_) => None,
        }
    }

    /// The id of `word`, inserting it (with the next id) when absent.
    #[inline]
    pub fn get_or_insert(&mut self, word: &str) -> u32 {
        let hash = self.hash(word);
        let slot = match self.probe(word, hash) {
            Probe::Found(id) => return id,
            Probe::Empty(slot) => slot,
        };
        // Ids are stored as `id + 1` in 32 bits; more distinct words than that cannot be
        // held in memory as `&str`s anyway.
        let id = u32::try_from(self.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .expect("fewer than 2^32 - 1 distinct words");
        self.bytes.extend_from_slice(word.as_bytes());
        self.ends.push(self.bytes.len());
        if (self.len() + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        } else {
            self.slots[slot] = tag(hash, id);
        }
        id
    }

    #[inline]
    fn hash(&self, word: &str) -> u64 {
        self.hash_bytes(word.as_bytes())
    }

    #[inline]
    fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(bytes);
        hasher.finish()
    }

    /// Linear probing from the hash's low bits; the tag in the slot's top half rules out
    /// almost every other word without touching its bytes.
    #[inline]
    fn probe(&self, word: &str, hash: u64) -> Probe {
        let mask = self.slots.len() - 1;
        let wanted = hash >> 32;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return Probe::Empty(i);
            }
            if slot >> 32 == wanted {
                let id = (slot as u32) - 1;
                if self.word_bytes(id) == word.as_bytes() {
                    return Probe::Found(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Doubles the slots and re-inserts every word (including one just appended to the arena).
    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        self.slots = vec![0; size];
        let mask = size - 1;
        for id in 0..self.len() as u32 {
            let hash = self.hash_bytes(self.word_bytes(id));
            let mut i = hash as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = tag(hash, id);
        }
    }
}

enum Probe {
    Found(u32),
    Empty(usize),
}

#[inline]
fn tag(hash: u64, id: u32) -> u64 {
    (hash >> 32 << 32) | u64::from(id + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_insertion_through_growth() {
        let mut interner = Interner::default();
        let words: Vec<String> = (0..5000).map(|i| format!("w{}", i * 7919 % 5000)).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(interner.get_or_insert(w), i as u32);
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(interner.get_or_insert(w), i as u32);
            assert_eq!(interner.get(w), Some(i as u32));
            assert_eq!(interner.word(i as u32), w);
        }
        assert_eq!(interner.get("absent"), None);
        assert_eq!(interner.len(), 5000);
        assert_eq!(interner.words().nth(3), Some(words[3].as_str()));
        let mut unicode = Interner::with_capacity(2);
        assert_eq!(unicode.get_or_insert("東京"), 0);
        assert_eq!(unicode.get_or_insert(""), 1);
        assert_eq!(unicode.get(""), Some(1));
        assert_eq!(unicode.word(0), "東京");
    }
}
