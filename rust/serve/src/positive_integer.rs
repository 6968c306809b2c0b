//! Reads a count from JSON with errors in the client's terms ("a positive integer"), not
//! Rust's ("usize").

use serde::de::{Deserializer, Error, Unexpected, Visitor};

/// Accepts a non-negative JSON integer; zero is left for the caller to reject with its own
/// message. Negative, fractional and non-numeric values are errors.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    deserializer.deserialize_u64(CountVisitor)
}

struct CountVisitor;

impl Visitor<'_> for CountVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a positive integer")
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<usize, E> {
        usize::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<usize, E> {
        u64::try_from(value)
            .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
            .and_then(|v| self.visit_u64(v))
    }
}
