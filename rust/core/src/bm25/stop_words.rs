//! The built-in English stop-word list.

/// Common English function words, lowercase: articles and determiners, pronouns, auxiliary and
/// modal verbs, prepositions, conjunctions, frequent adverbs, and the pieces a word split leaves
/// of contractions (`don't` -> `don`, `t`).
/// `won` is left out: unlike the other negative stems it is also a common content word.
// Kept in groups, several words a line, rather than rustfmt's one word a line.
#[rustfmt::skip]
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    // articles and determiners
    "a", "an", "the", "this", "that", "these", "those", "each", "every", "either", "neither",
    "any", "some", "no", "all", "both", "few", "more", "most", "other", "another", "such", "own",
    "same", "much", "many", "several",
    // personal, possessive, reflexive, relative and interrogative pronouns
    "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves", "you", "your",
    "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers",
    "herself", "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what",
    "which", "who", "whom", "whose",
    // auxiliary and modal verbs
    "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do",
    "does", "did", "doing", "will", "would", "shall", "should", "can", "could", "may", "might",
    "must",
    // prepositions
    "about", "above", "across", "after", "against", "along", "among", "around", "at", "before",
    "behind", "below", "beneath", "beside", "between", "beyond", "by", "down", "during",
    "except", "for", "from", "in", "inside", "into", "near", "of", "off", "on", "onto", "out",
    "outside", "over", "past", "since", "through", "throughout", "to", "toward", "towards",
    "under", "until", "up", "upon", "via", "with", "within", "without",
    // conjunctions and subordinators
    "and", "but", "or", "nor", "so", "yet", "if", "because", "as", "while", "although",
    "though", "unless", "whether", "than", "then", "once",
    // frequent adverbs
    "not", "only", "very", "too", "also", "just", "again", "further", "here", "there", "when",
    "where", "why", "how", "now", "ever", "still",
    // what splitting contractions at the apostrophe leaves behind
    "s", "t", "d", "ll", "m", "re", "ve", "don", "doesn", "didn", "isn", "aren", "wasn", "weren",
    "hasn", "haven", "hadn", "wouldn", "shouldn", "couldn", "mustn",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_lowercase_and_without_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for word in ENGLISH_STOP_WORDS {
            assert_eq!(*word, word.to_lowercase());
            assert!(word.chars().all(char::is_alphanumeric), "{word}");
            assert!(seen.insert(word), "duplicate {word}");
        }
    }
}
