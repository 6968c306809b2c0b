//! Per-request limits, checked before any work is done.

use crate::error::ApiError;

/// What one request may ask for; every breach is a 4xx JSON error naming the flag to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most texts in one request (for `/similarity`, queries and documents together).
    pub max_texts: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest `top_k` of a `/search` request.
    pub max_top_k: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_texts: crate::cli::DEFAULT_MAX_TEXTS,
            max_body_bytes: crate::cli::DEFAULT_MAX_BODY_BYTES,
            max_top_k: crate::cli::DEFAULT_MAX_TOP_K,
        }
    }
}

impl Limits {
    /// 413 unless `count` texts (in the field `field`) are within `--max-texts`.
    pub fn check_texts(&self, field: &str, count: usize) -> Result<(), ApiError> {
        if count > self.max_texts {
            return Err(ApiError::too_large(format!(
                "`{field}`: got {count} texts, expected at most {} per request \
                 (the server's --max-texts)",
                self.max_texts
            )));
        }
        Ok(())
    }

    /// 422 unless `top_k` is between 1 and `--max-top-k`.
    pub fn check_top_k(&self, top_k: usize) -> Result<(), ApiError> {
        if top_k == 0 {
            return Err(ApiError::unprocessable(
                "`top_k`: got 0, expected a positive integer",
            ));
        }
        if top_k > self.max_top_k {
            return Err(ApiError::unprocessable(format!(
                "`top_k`: got {top_k}, expected at most {} (the server's --max-top-k)",
                self.max_top_k
            )));
        }
        Ok(())
    }
}
