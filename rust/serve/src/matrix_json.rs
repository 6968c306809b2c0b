//! JSON encoding of float matrices straight from ndarray, without a `Vec<Vec<f32>>` copy.

use embedforge::ndarray::ArrayView2;
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// A matrix serialised as a list of rows, each a list of numbers.
pub(crate) struct MatrixJson<'a>(pub ArrayView2<'a, f32>);

impl Serialize for MatrixJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut rows = serializer.serialize_seq(Some(self.0.nrows()))?;
        for row in self.0.rows() {
            rows.serialize_element(&RowJson(row))?;
        }
        rows.end()
    }
}

/// One matrix row as a list of numbers.
struct RowJson<'a>(embedforge::ndarray::ArrayView1<'a, f32>);

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut values = serializer.serialize_seq(Some(self.0.len()))?;
        for value in self.0.iter() {
            values.serialize_element(value)?;
        }
        values.end()
    }
}
