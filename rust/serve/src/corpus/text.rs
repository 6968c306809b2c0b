//! A text corpus file: UTF-8, one document per line.

use std::path::Path;

/// The lines of `path` (`\n` or `\r\n` endings; a final newline does not start a document).
///
/// Blank lines are kept as (empty) documents so that line numbers stay the documents' ids.
pub(super) fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count();
        format!("line {line} (0-based) is not valid UTF-8; expected a UTF-8 text file")
    })?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return Err("the file is empty; expected one document per line".into());
    }
    Ok(lines)
}
