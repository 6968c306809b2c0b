//! The service over a real socket: in-process with a shutdown future, and the binary itself
//! stopped by SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use embedforge_serve::{server, Limits};
use serde_json::Value;

use crate::common::*;

/// One HTTP/1.1 request on a fresh connection; returns the status code and the JSON body.
fn http(address: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_until_the_shutdown_future_completes() {
    let listener = server::bind("127.0.0.1", 0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = state(fixture_model(), None, Limits::default());
    let server = tokio::spawn(server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let (status, answer) = tokio::task::spawn_blocking(move || {
        http(address, "POST", "/embed", r#"{"inputs": ["the cat"]}"#)
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["embeddings"][0].as_array().unwrap().len(), 8);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn the_binary_answers_and_exits_zero_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedforge-serve"))
        .args(["--model", fixture_dir().to_str().unwrap(), "--port", "0"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let address: SocketAddr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        if let Some((_, address)) = line.split_once("listening on http://") {
            break address.trim().parse().unwrap();
        }
    };
    let (status, health) = http(address, "GET", "/health", "");
    assert_eq!((status, &health["status"]), (200, &Value::from("ok")));

    // SAFETY: `kill` only sends a signal to the child we spawned.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_binary_fails_with_a_message_for_a_bad_model() {
    let output = Command::new(env!("CARGO_BIN_EXE_embedforge-serve"))
        .args(["--model", "/nonexistent/model", "--port", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--model /nonexistent/model"), "{stderr}");
}
