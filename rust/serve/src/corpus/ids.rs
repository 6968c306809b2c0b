//! An ids file: UTF-8, one id per line, naming the rows of the embeddings matrix in order.

use std::collections::HashMap;
use std::path::Path;

/// The ids in `path`; fails unless there are exactly `rows` of them, none empty or repeated.
pub(super) fn read_ids(path: &Path, rows: usize) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let ids: Vec<String> = text.lines().map(str::to_owned).collect();
    if ids.len() != rows {
        return Err(format!(
            "got {} ids, expected {rows} (one per row of --embeddings)",
            ids.len()
        ));
    }
    let mut first_line: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (line, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(format!("line {line} (0-based) is empty, expected an id"));
        }
        // A repeated id would make two different hits indistinguishable to the client.
        if let Some(earlier) = first_line.insert(id, line) {
            return Err(format!(
                "id {id:?} on line {line} (0-based) repeats line {earlier}, expected unique ids"
            ));
        }
    }
    Ok(ids)
}
