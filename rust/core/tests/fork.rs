//! A child forked after the thread pool started must not hang (DataLoader workers).

mod common;

use std::time::{Duration, Instant};

use embedforge::{mark_forked, num_threads, set_num_threads, BatchTokenizer};

#[test]
fn forked_child_runs_single_threaded_without_hanging() {
    let tokenizer = BatchTokenizer::from_json(&common::tokenizer_json()).unwrap();
    let texts: Vec<String> = (0..2000)
        .map(|i| format!("hello world {i} the cat"))
        .collect();
    set_num_threads(2);
    // Starts the pool in the parent.
    let expected = tokenizer.encode_flat(&texts, None, None).unwrap();

    // SAFETY: the child only runs Rust code that allocates and then leaves with `_exit`,
    // never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        mark_forked();
        let ok = num_threads() == 1
            && tokenizer.encode_flat(&texts, None, None).ok() == Some(expected.clone());
        // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: plain syscall on our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("forked child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    // The parent keeps its pool.
    assert_eq!(num_threads(), 2);
    assert_eq!(tokenizer.encode_flat(&texts, None, None).unwrap(), expected);
}
