//! Embeds stdin with a static model: one text per line in, one JSON array per line out.
//!
//! ```text
//! cargo run --release -p embedforge --example embed -- MODEL_DIR < texts.txt > embeddings.jsonl
//! ```
//!
//! Lines are embedded in chunks, so arbitrarily large inputs stream with bounded memory.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use embedforge::StaticModel;

/// Lines embedded per call: large enough to keep all threads busy, small enough to stream.
const CHUNK: usize = 4096;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("embed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(model_dir), None) = (args.next(), args.next()) else {
        return Err("usage: embed MODEL_DIR < texts.txt".into());
    };
    let model = StaticModel::load(&model_dir).map_err(|e| e.to_string())?;

    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut lines = stdin.lines();
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        for line in lines.by_ref().take(CHUNK) {
            chunk.push(line.map_err(|e| format!("cannot read stdin: {e}"))?);
        }
        if chunk.is_empty() {
            break;
        }
        let embeddings = model.embed(&chunk).map_err(|e| e.to_string())?;
        for row in embeddings.rows() {
            let json = serde_json::to_string(&row.to_vec()).map_err(|e| e.to_string())?;
            writeln!(out, "{json}").map_err(|e| format!("cannot write stdout: {e}"))?;
        }
    }
    out.flush().map_err(|e| format!("cannot write stdout: {e}"))
}
