//! `--metrics` (issue #20, item 5): the job ends when its input ends,
//! whatever the endpoint's clients do: one holds a half-sent request, one
//! pipelines requests without end and never reads the answers. (The server's
//! own bounds, header size, connections, time, are tested beside it in
//! cli/src/metrics.rs.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const REFERENCE: &str = "tests/fixtures/reference.png";

#[test]
fn monitor_exits_at_the_end_of_its_input_while_clients_hold_the_endpoint() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args([
            "monitor",
            "--model",
            MODEL,
            "--provider",
            "cpu",
            "--quiet",
            "--limit",
            "1.99",
            "--metrics",
            "127.0.0.1:0",
            "--pipeline",
            // A live source: three seconds of input, time for the clients.
            "videotestsrc is-live=true num-buffers=30 ! video/x-raw,width=64,height=64,framerate=10/1",
            REFERENCE,
        ])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut said = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if let Some(rest) = line.split("metrics on http://").nth(1) {
                let _ = address_tx.send(rest.trim_end_matches("/metrics").to_owned());
            }
            said.push_str(&line);
            said.push('\n');
        }
        said
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the tool says where it serves");
    // One client sends half a request and holds the connection.
    let mut half = std::net::TcpStream::connect(&address).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Another pipelines requests (bounded here) and never reads.
    let mut pipelined = std::net::TcpStream::connect(&address).unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..100_000 {
            if pipelined
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_err()
            {
                break;
            }
        }
    });
    // A generous bound: the input lasts three seconds; a job kept alive by
    // its clients would run until they go (here: never).
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = log.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("the job outlived its input:\n{said}"));
    assert_eq!(status.code(), Some(0), "{said}");
    drop(half);
    writer.join().unwrap();
}
