//! Per-query top-k selection with a moving threshold.
//!
//! A [`Collector`] appends candidates that beat its current k-th best into a buffer twice
//! the size of `k`; when the buffer fills it keeps the best `k` (a linear-time partial
//! select) and raises the threshold to the new k-th best. Once the threshold has settled,
//! almost every candidate is rejected by a single comparison, which is what makes scoring
//! hundreds of millions of pairs cheap to select from.

use std::cmp::Ordering;

/// A score type the collectors can rank: a total order where greater is better.
pub(crate) trait Score: Copy + Send + Sync {
    /// Total order on scores (NaN sorts above +inf for floats, as `f32::total_cmp`).
    fn total_cmp(&self, other: &Self) -> Ordering;

    /// Whether any of `scores` is not below `gate` (a branch-free scan the compiler vectorises).
    #[inline]
    fn any_reaches(scores: &[Self], gate: Self) -> bool {
        scores
            .iter()
            .fold(false, |hit, s| hit | (s.total_cmp(&gate) != Ordering::Less))
    }
}

impl Score for f32 {
    #[inline]
    fn total_cmp(&self, other: &Self) -> Ordering {
        f32::total_cmp(self, other)
    }

    #[inline]
    fn any_reaches(scores: &[Self], gate: Self) -> bool {
        // NaN passes too; the exact check then ranks it like total_cmp.
        scores
            .iter()
            .fold(false, |hit, &s| hit | (s >= gate) | s.is_nan())
    }
}

impl Score for f64 {
    #[inline]
    fn total_cmp(&self, other: &Self) -> Ordering {
        f64::total_cmp(self, other)
    }
}

impl Score for i32 {
    #[inline]
    fn total_cmp(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

/// A scored corpus row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Hit<S> {
    /// The score; higher ranks first.
    pub score: S,
    /// The corpus row; on equal scores the lower row ranks first.
    pub index: usize,
}

impl<S: Score> Hit<S> {
    /// Ranking order: `Less` means `self` ranks before `other`.
    #[inline]
    pub fn rank_cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.index.cmp(&other.index))
    }
}

/// The best `k` candidates offered so far for one query.
pub(crate) struct Collector<S> {
    k: usize,
    hits: Vec<Hit<S>>,
    /// The k-th best hit once `k` hits have been kept; anything ranking after it is rejected.
    worst: Option<Hit<S>>,
}

impl<S: Score> Collector<S> {
    /// An empty collector keeping `k >= 1` hits.
    pub fn new(k: usize) -> Self {
        debug_assert!(k >= 1);
        Self {
            k,
            hits: Vec::new(),
            worst: None,
        }
    }

    /// The score a candidate must reach (`>=`) to possibly enter; `None` while not yet full.
    ///
    /// A cheap pre-filter for vectorised callers: candidates below it can be skipped without
    /// calling [`Collector::offer`].
    #[inline]
    pub fn gate(&self) -> Option<S> {
        self.worst.map(|w| w.score)
    }

    /// Considers one candidate.
    #[inline]
    pub fn offer(&mut self, score: S, index: usize) {
        let hit = Hit { score, index };
        if let Some(worst) = &self.worst {
            if hit.rank_cmp(worst) != Ordering::Less {
                return;
            }
        }
        if self.hits.capacity() == 0 {
            self.hits.reserve_exact(self.capacity());
        }
        self.hits.push(hit);
        if self.hits.len() >= self.capacity() {
            self.compact();
        }
    }

    /// Buffer length at which the buffer is cut back to `k`: large enough that compactions
    /// are rare, small enough to stay in cache.
    #[inline]
    fn capacity(&self) -> usize {
        self.k + self.k.max(32)
    }

    /// Keeps the best `k` hits and raises the threshold to the k-th of them.
    fn compact(&mut self) {
        let k = self.k;
        if self.hits.len() > k {
            self.hits.select_nth_unstable_by(k - 1, Hit::rank_cmp);
            self.hits.truncate(k);
        }
        if self.hits.len() == k {
            // After the partial select the k-th best may sit anywhere in the kept part.
            self.worst = self.hits.iter().copied().max_by(Hit::rank_cmp);
        }
    }

    /// Adds every hit of `other` (a collector over a different part of the corpus).
    pub fn merge(&mut self, other: Collector<S>) {
        for hit in other.hits {
            self.offer(hit.score, hit.index);
        }
    }

    /// The kept hits, best first.
    pub fn into_sorted(mut self) -> Vec<Hit<S>> {
        self.hits.sort_unstable_by(Hit::rank_cmp);
        self.hits.truncate(self.k);
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_with_ties_to_the_lower_index() {
        let scores = [3.0f32, 1.0, 3.0, 2.0, 5.0, 3.0, 0.5, 5.0, 3.0];
        for k in 1..=scores.len() + 2 {
            let mut c = Collector::new(k);
            for (i, &s) in scores.iter().enumerate() {
                c.offer(s, i);
            }
            let mut expected: Vec<(f32, usize)> = scores.iter().copied().zip(0..).collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            expected.truncate(k);
            let got: Vec<(f32, usize)> = c
                .into_sorted()
                .into_iter()
                .map(|h| (h.score, h.index))
                .collect();
            assert_eq!(got, expected, "k={k}");
        }
    }

    #[test]
    fn merging_halves_equals_one_pass() {
        let scores: Vec<i32> = (0..1000).map(|i| i * 7919 % 613 % 50).collect();
        let mut whole = Collector::new(40);
        let (mut left, mut right) = (Collector::new(40), Collector::new(40));
        for (i, &s) in scores.iter().enumerate() {
            whole.offer(s, i);
            if i < 500 {
                left.offer(s, i);
            } else {
                right.offer(s, i);
            }
        }
        // Merge in the "wrong" order on purpose: ties must still go to the lower index.
        right.merge(left);
        assert_eq!(right.into_sorted(), whole.into_sorted());
    }
}
