//! The command line: defaults, and the combinations it refuses.

use clap::Parser;
use embedforge_serve::{Args, Limits};

#[test]
fn defaults() {
    let args = Args::try_parse_from(["embedforge-serve", "--model", "m"]).unwrap();
    assert_eq!((args.host.as_str(), args.port), ("127.0.0.1", 8080));
    assert_eq!(args.limits(), Limits::default());
    assert_eq!(args.limits().max_texts, 1024);
    assert_eq!(args.threads, 0);
}

#[test]
fn refused_combinations() {
    let refused = [
        vec![
            "--corpus",
            "c.txt",
            "--embeddings",
            "e.npy",
            "--ids",
            "i.txt",
        ],
        vec!["--embeddings", "e.npy"],
        vec!["--ids", "i.txt"],
        vec!["--max-texts", "0"],
        vec!["--max-body-bytes", "lots"],
    ];
    for extra in refused {
        let mut argv = vec!["embedforge-serve", "--model", "m"];
        argv.extend(&extra);
        assert!(
            Args::try_parse_from(&argv).is_err(),
            "{extra:?} was accepted"
        );
    }
    assert!(Args::try_parse_from(["embedforge-serve"]).is_err());
}
