//! A `.npy` file of corpus embeddings: little-endian float32, C order, two dimensions.
//!
//! The format (numpy's NEP 1) is a magic string, a version, a header length (2 bytes in version
//! 1, 4 bytes in versions 2 and 3), a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (5000, 256), }` and the raw data. Only
//! this one layout is needed, so the header is read here rather than through a general reader.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use embedforge::ndarray::Array2;

/// What the file must hold, for error messages.
const EXPECTED: &str = "a 2-D little-endian float32 C-order .npy matrix [documents, dim] \
                        (numpy.save of np.ascontiguousarray(x, dtype='<f4'))";

/// The first bytes of every .npy file.
const MAGIC: &[u8] = b"\x93NUMPY";

/// Bytes converted at a time while reading the data.
const READ_CHUNK: usize = 1 << 16;

/// The matrix in `path`; fails unless it is 2-D float32, `dim` wide, and all finite.
pub(super) fn read_matrix(path: &Path, dim: usize) -> Result<Array2<f32>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let mut reader = BufReader::new(file);
    let (rows, cols) = read_header(&mut reader).map_err(|e| format!("{e}; expected {EXPECTED}"))?;
    if rows == 0 {
        return Err(format!("the matrix has no rows; expected {EXPECTED}"));
    }
    if cols != dim {
        return Err(format!(
            "rows are {cols} wide, expected {dim} (the model's embedding width)"
        ));
    }
    let values = read_values(&mut reader, rows, cols)?;
    // Cosine scores of NaN or infinite rows are NaN, which has no place in a ranking.
    if let Some(position) = values.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "row {} holds NaN or an infinite value, expected finite embeddings",
            position / cols
        ));
    }
    Array2::from_shape_vec((rows, cols), values).map_err(|e| format!("bad shape: {e}"))
}

/// Reads the magic string, version and header; returns the shape.
fn read_header(reader: &mut impl Read) -> Result<(usize, usize), String> {
    let mut preamble = [0u8; 8];
    reader
        .read_exact(&mut preamble)
        .map_err(|e| format!("cannot read the .npy preamble ({e})"))?;
    if &preamble[..6] != MAGIC {
        return Err("the file does not start with the .npy magic string".into());
    }
    let major = preamble[6];
    let header_len = match major {
        1 => {
            let mut len = [0u8; 2];
            reader.read_exact(&mut len).map_err(|e| e.to_string())?;
            usize::from(u16::from_le_bytes(len))
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            reader.read_exact(&mut len).map_err(|e| e.to_string())?;
            usize::try_from(u32::from_le_bytes(len)).map_err(|e| e.to_string())?
        }
        other => return Err(format!("unknown .npy format version {other}")),
    };
    let mut header = vec![0u8; header_len];
    reader
        .read_exact(&mut header)
        .map_err(|e| format!("cannot read the .npy header ({e})"))?;
    let header = String::from_utf8(header).map_err(|_| "the .npy header is not text".to_owned())?;
    parse_header(&header)
}

/// Checks the header dict and returns the shape.
fn parse_header(header: &str) -> Result<(usize, usize), String> {
    let descr = quoted_value(header, "descr")?;
    if descr != "<f4" {
        return Err(format!("the data type is {descr:?}, not '<f4' (float32)"));
    }
    match raw_value(header, "fortran_order")? {
        v if v.starts_with("False") => {}
        v if v.starts_with("True") => {
            return Err("the matrix is stored in Fortran (column-major) order".into())
        }
        v => return Err(format!("cannot read fortran_order from {v:?}")),
    }
    let shape = raw_value(header, "shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| format!("cannot read the shape from {shape:?}"))?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read the shape ({inner:?}): {e}"))?;
    match dims[..] {
        [rows, cols] => Ok((rows, cols)),
        _ => Err(format!(
            "the array has {} dimensions (shape ({inner})), not 2",
            dims.len()
        )),
    }
}

/// The text after `'key':` in the header dict, leading spaces removed.
fn raw_value<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    for quote in ['\'', '"'] {
        let pattern = format!("{quote}{key}{quote}");
        if let Some(start) = header.find(&pattern) {
            let rest = header[start + pattern.len()..].trim_start();
            if let Some(value) = rest.strip_prefix(':') {
                return Ok(value.trim_start());
            }
        }
    }
    Err(format!("the .npy header has no {key:?} entry"))
}

/// A quoted string value of the header dict.
fn quoted_value<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    let value = raw_value(header, key)?;
    let quote = value
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| format!("{key:?} is not a string"))?;
    value[1..]
        .split_once(quote)
        .map(|(inner, _)| inner)
        .ok_or_else(|| format!("{key:?} is an unterminated string"))
}

/// Reads exactly `rows * cols` little-endian float32 values and checks nothing follows.
fn read_values(reader: &mut impl Read, rows: usize, cols: usize) -> Result<Vec<f32>, String> {
    let count = rows
        .checked_mul(cols)
        .ok_or_else(|| format!("the shape ({rows}, {cols}) is too large"))?;
    let mut values = Vec::with_capacity(count);
    let mut buffer = vec![0u8; READ_CHUNK];
    while values.len() < count {
        let want = ((count - values.len()) * 4).min(READ_CHUNK);
        reader.read_exact(&mut buffer[..want]).map_err(|e| {
            format!(
                "the data ends after {} of {count} values ({e}); the file is truncated",
                values.len()
            )
        })?;
        values.extend(
            buffer[..want]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok(values),
        Ok(_) => Err(format!(
            "the file holds more data than its shape ({rows}, {cols}) says"
        )),
        Err(e) => Err(format!("cannot read the file: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_header;

    #[test]
    fn headers_numpy_writes_are_read() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (5000, 256), }      \n";
        assert_eq!(parse_header(header), Ok((5000, 256)));
        let header = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L, 2L)}";
        assert_eq!(parse_header(header), Ok((3, 2)));
    }

    #[test]
    fn other_layouts_are_named() {
        let cases = [
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
                "\"<f8\"",
            ),
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }",
                "\">f4\"",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }",
                "Fortran",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }",
                "1 dimensions",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }",
                "3 dimensions",
            ),
            ("{'descr': '<f4', 'fortran_order': False}", "no \"shape\""),
        ];
        for (header, fragment) in cases {
            let error = parse_header(header).unwrap_err();
            assert!(error.contains(fragment), "{error:?} lacks {fragment:?}");
        }
    }
}
