//! Length bucketing: which texts to batch together.

use std::cmp::Reverse;

/// Indices that sort `texts` by decreasing length in characters (Unicode scalar values, like
/// Python's `len(str)`); texts of equal length keep their input order.
pub fn length_order<S: AsRef<str>>(texts: &[S]) -> Vec<usize> {
    let lengths: Vec<usize> = texts.iter().map(|t| t.as_ref().chars().count()).collect();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| Reverse(lengths[i]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_and_stable() {
        let texts = ["ab", "", "abcd", "xy", "日本語"];
        assert_eq!(length_order(&texts), [2, 4, 0, 3, 1]);
    }

    #[test]
    fn counts_characters_not_bytes() {
        // "ééé" is 6 bytes but 3 characters; "abcd" is 4 characters.
        assert_eq!(length_order(&["ééé", "abcd"]), [1, 0]);
    }

    #[test]
    fn empty_input() {
        assert!(length_order::<&str>(&[]).is_empty());
    }
}
