//! The load generator on loopback: targets serve bodies whose values change every scrape, and the
//! sink counts the samples of a snappy `WriteRequest` exactly and reports them on `/stats`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(args: &[&str], port: u16) -> Kill {
    let child = Command::new(env!("CARGO_BIN_EXE_nodetel-loadgen"))
        .args(args)
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "{args:?} did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Kill(child)
}

/// One request on a fresh connection; returns the status line and the body.
fn request(port: u16, head: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut out = vec![0; len];
    r.read_exact(&mut out).unwrap();
    (status.trim().to_string(), out)
}

fn values(body: &[u8]) -> Vec<f64> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn targets_change_values_every_scrape_and_the_sink_counts_samples() {
    let port = free_port();
    let _targets = start(
        &[
            "targets",
            "--port",
            &port.to_string(),
            "--count",
            "1",
            "--series",
            "300",
        ],
        port,
    );
    let get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let (status, a) = request(port, get, b"");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (_, b) = request(port, get, b"");
    let (va, vb) = (values(&a), values(&b));
    assert!((295..=310).contains(&va.len()), "{} series", va.len());
    assert_eq!(va.len(), vb.len());
    assert!(va.iter().zip(&vb).filter(|(x, y)| x != y).count() > va.len() / 2);

    // A WriteRequest with 2 series of 3 and 1 samples.
    let sample = |v: f64, ts: u8| {
        let mut s = vec![0x09];
        s.extend_from_slice(&v.to_le_bytes());
        s.extend_from_slice(&[0x10, ts]);
        s
    };
    let field = |n: u8, body: &[u8], out: &mut Vec<u8>| {
        out.push(n << 3 | 2);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    };
    let mut req = Vec::new();
    for samples in [3, 1] {
        let mut label = Vec::new();
        field(1, b"__name__", &mut label);
        field(2, b"up", &mut label);
        let mut ts = Vec::new();
        field(1, &label, &mut ts);
        for i in 0..samples {
            field(2, &sample(1.0, 10 + i), &mut ts);
        }
        field(1, &ts, &mut req);
    }
    let body = snap::raw::Encoder::new().compress_vec(&req).unwrap();
    let sink = free_port();
    let _sink = start(&["sink", "--port", &sink.to_string()], sink);
    let post = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert_eq!(request(sink, &post, &body).0, "HTTP/1.1 204 No Content");
    let bad = "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(request(sink, bad, b"xyz").0, "HTTP/1.1 400 Bad Request");
    let (_, stats) = request(sink, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", b"");
    let stats = String::from_utf8(stats).unwrap();
    for want in [
        "\"requests\":2,",
        "\"samples\":4,",
        "\"series\":2,",
        "\"signed\":1,",
        "\"unsigned\":1,",
        "\"bad\":1,",
    ] {
        assert!(stats.contains(want), "{want} in {stats}");
    }
    assert!(
        stats.contains(&format!("\"wire_bytes\":{},", body.len() + 3)),
        "{stats}"
    );
}
