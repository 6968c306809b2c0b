//! Throughput of batch tokenisation and static embedding on the shared STS-B sentences.
//!
//! `cargo bench -p embedforge` prints the best of a few runs; it needs `../shared/data` and
//! says so when it is missing. (A plain timing loop: no criterion dependency.)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use embedforge::{BatchTokenizer, PaddedOptions, StaticModel};

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f());
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let Ok(sts) = std::fs::read_to_string(data.join("stsb/sts-train.csv")) else {
        eprintln!("skipping: {} is not on this machine", data.display());
        return;
    };
    let sentences: Vec<&str> = sts
        .lines()
        .flat_map(|line| line.split('\t').skip(5).take(2))
        .collect();

    let tokenizer = BatchTokenizer::from_file(data.join("tokenizers/bert-base-uncased.json"))
        .expect("bert-base-uncased tokenizer");
    let batch: Vec<&str> = sentences.iter().cycle().take(2048).copied().collect();
    let options = PaddedOptions {
        max_length: Some(128),
        ..PaddedOptions::default()
    };
    let t = best_of(10, || {
        tokenizer.encode_padded(&batch, None, &options).unwrap()
    });
    println!(
        "encode_padded  2048 sentences, max_length 128: {:8.1} ms",
        t.as_secs_f64() * 1e3
    );

    let model = StaticModel::load(data.join("model2vec-fixture")).expect("model2vec fixture");
    let texts: Vec<&str> = sentences.iter().cycle().take(100_000).copied().collect();
    let t = best_of(3, || model.embed(&texts).unwrap());
    println!(
        "StaticModel::embed 100k sentences:             {:8.1} ms",
        t.as_secs_f64() * 1e3
    );
}
