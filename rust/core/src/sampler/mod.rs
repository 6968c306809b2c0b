//! Batch sampling: the per-row loops behind embedforge's Python batch samplers.
//!
//! The random orders come from the caller (torch, so the batches match sentence-transformers'
//! bit for bit); this module turns rows' values into small integer ids once
//! ([`intern_text_columns`]) and runs the no-duplicates selection over an order
//! ([`no_duplicates_pass`]).

mod interning;
mod no_duplicates;

pub use interning::{intern_text_columns, TextChunk};
pub use no_duplicates::{no_duplicates_pass, Batches};
