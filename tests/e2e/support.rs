//! Helpers for running the binary and reading its endpoints.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn nodetel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nodetel"));
    c.env_remove("AMP_REMOTE_WRITE_URL").env("NODETEL_LOG_LEVEL", "info");
    c
}

pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub(crate) fn run_to_end(cmd: &mut Command) -> Output {
    cmd.output().expect("the nodetel binary runs")
}

/// A port that was free a moment ago on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET `http://addr{path}`; returns (status, body), or None when nothing listens yet.
pub(crate) fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

/// Polls until `check` returns Some, or panics after `limit`.
pub(crate) fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running nodetel that is killed if the test fails before stopping it.
pub(crate) struct Running(Option<Child>);

impl Running {
    pub(crate) fn spawn(cmd: &mut Command) -> Running {
        Running(Some(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn nodetel"),
        ))
    }

    /// Sends SIGTERM and waits for the exit; returns the output and how long the exit took.
    pub(crate) fn terminate(mut self) -> (Output, Duration) {
        let child = self.0.take().unwrap();
        let pid = child.id().to_string();
        let start = Instant::now();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        (out, start.elapsed())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Held by tests that run the default config, which listens on fixed ports.
pub(crate) static DEFAULT_PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Running {
    /// SIGKILL, as a crash or the OOM killer would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

/// One request an [`HttpServer`] received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The status the server answered with.
    pub(crate) status: u16,
}

type Handler = dyn Fn(&str, &str) -> (u16, String) + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length bodies) that records every
/// request and answers with `handler(method, path)`.
pub(crate) struct HttpServer {
    pub(crate) addr: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl HttpServer {
    pub(crate) fn start(
        port: u16,
        handler: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler: std::sync::Arc<Handler> = std::sync::Arc::new(handler);
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, record) = (handler.clone(), record.clone());
                std::thread::spawn(move || serve_connection(stream, &*handler, &record));
            }
        });
        HttpServer { addr, seen }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, record: &std::sync::Mutex<Vec<Request>>) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, text) = handler(&method, &path);
        record.lock().unwrap().push(Request {
            method,
            path,
            headers,
            body,
            status,
        });
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A series decoded from a remote write request: labels and (value, timestamp) samples.
#[derive(Debug, Clone)]
pub(crate) struct WrittenSeries {
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) samples: Vec<(f64, i64)>,
}

impl WrittenSeries {
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn name(&self) -> &str {
        self.label("__name__").unwrap_or("")
    }
}

/// Decodes a snappy-compressed remote write 1.0 `WriteRequest`, independently of nodetel's
/// encoder (a minimal protobuf reader for the fields remote write uses).
pub(crate) fn decode_write_request(body: &[u8]) -> Vec<WrittenSeries> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("snappy block format");
    let mut out = Vec::new();
    for (field, value) in fields(&raw) {
        if let (1, Field::Bytes(ts)) = (field, value) {
            let mut s = WrittenSeries {
                labels: Vec::new(),
                samples: Vec::new(),
            };
            for (f, v) in fields(ts) {
                match (f, v) {
                    (1, Field::Bytes(label)) => {
                        let (mut name, mut value) = (String::new(), String::new());
                        for (lf, lv) in fields(label) {
                            if let Field::Bytes(b) = lv {
                                let text = String::from_utf8(b.to_vec()).unwrap();
                                if lf == 1 { name = text } else { value = text }
                            }
                        }
                        s.labels.push((name, value));
                    }
                    (2, Field::Bytes(sample)) => {
                        let (mut value, mut ts) = (0.0, 0);
                        for (sf, sv) in fields(sample) {
                            match (sf, sv) {
                                (1, Field::Fixed64(bits)) => value = f64::from_bits(bits),
                                (2, Field::Varint(v)) => ts = v as i64,
                                _ => {}
                            }
                        }
                        s.samples.push((value, ts));
                    }
                    _ => {}
                }
            }
            out.push(s);
        }
    }
    out
}

enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

fn fields(mut buf: &[u8]) -> Vec<(u64, Field<'_>)> {
    fn varint(buf: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = buf[0];
            *buf = &buf[1..];
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut buf)),
            1 => {
                let (b, rest) = buf.split_at(8);
                buf = rest;
                Field::Fixed64(u64::from_le_bytes(b.try_into().unwrap()))
            }
            2 => {
                let len = varint(&mut buf) as usize;
                let (b, rest) = buf.split_at(len);
                buf = rest;
                Field::Bytes(b)
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, field));
    }
    out
}
