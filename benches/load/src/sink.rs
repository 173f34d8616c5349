//! The remote write sink: decompresses each snappy `WriteRequest`, counts its samples exactly and
//! answers 204; `GET /stats` returns the running totals as JSON for the harness to diff.

use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http;
use crate::writereq;

/// Totals since start. The `window_*` fields restart at every `/stats` read.
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    samples: AtomicU64,
    series: AtomicU64,
    wire_bytes: AtomicU64,
    raw_bytes: AtomicU64,
    signed: AtomicU64,
    unsigned: AtomicU64,
    bad: AtomicU64,
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// Largest delay from a request's newest sample to its arrival, milliseconds.
    max_lag_ms: i64,
    last_lag_ms: i64,
    scrape_duration_sum: f64,
    scrape_duration_count: u64,
    scrape_duration_max: f64,
}

static STATS: std::sync::LazyLock<Stats> = std::sync::LazyLock::new(Stats::default);

/// Serves until the process is killed.
pub(crate) fn serve(port: u16) -> io::Result<()> {
    let l = TcpListener::bind(("127.0.0.1", port))?;
    eprintln!("sink: http://127.0.0.1:{port}/api/v1/write, stats at /stats");
    for conn in l.incoming().flatten() {
        thread::spawn(move || {
            let _ = handle(conn);
        });
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn handle(conn: TcpStream) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(256 * 1024, conn);
    let mut scratch = Vec::new();
    let mut raw = Vec::new();
    let mut dec = snap::raw::Decoder::new();
    while let Some(req) = http::read_request(&mut r, std::mem::take(&mut scratch))? {
        if req.method == "GET" {
            let body = if req.path.starts_with("/stats") {
                stats_json()
            } else {
                String::new()
            };
            http::respond(&mut w, "200 OK", "application/json", body.as_bytes())?;
            scratch = req.body;
            continue;
        }
        let s = &*STATS;
        s.requests.fetch_add(1, Relaxed);
        s.wire_bytes.fetch_add(req.body.len() as u64, Relaxed);
        let signed = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"));
        (if signed { &s.signed } else { &s.unsigned }).fetch_add(1, Relaxed);
        let counted = snap::raw::decompress_len(&req.body).ok().and_then(|n| {
            raw.resize(n, 0);
            dec.decompress(&req.body, &mut raw).ok()?;
            writereq::count(&raw)
        });
        match counted {
            Some(c) => {
                s.raw_bytes.fetch_add(raw.len() as u64, Relaxed);
                s.samples.fetch_add(c.samples, Relaxed);
                s.series.fetch_add(c.series, Relaxed);
                let mut win = s.window.lock().unwrap_or_else(|e| e.into_inner());
                if c.max_timestamp_ms > 0 {
                    let lag = now_ms() - c.max_timestamp_ms;
                    win.max_lag_ms = win.max_lag_ms.max(lag);
                    win.last_lag_ms = lag;
                }
                win.scrape_duration_sum += c.scrape_duration.0;
                win.scrape_duration_count += c.scrape_duration.1;
                win.scrape_duration_max = win.scrape_duration_max.max(c.scrape_duration.2);
                drop(win);
                http::respond(&mut w, "204 No Content", "text/plain", b"")?;
            }
            None => {
                s.bad.fetch_add(1, Relaxed);
                http::respond(&mut w, "400 Bad Request", "text/plain", b"not a snappy WriteRequest\n")?;
            }
        }
        scratch = req.body;
    }
    Ok(())
}

fn stats_json() -> String {
    let s = &*STATS;
    let win = std::mem::take(&mut *s.window.lock().unwrap_or_else(|e| e.into_inner()));
    format!(
        "{{\"requests\":{},\"samples\":{},\"series\":{},\"wire_bytes\":{},\"raw_bytes\":{},\"signed\":{},\
         \"unsigned\":{},\"bad\":{},\"max_lag_ms\":{},\"last_lag_ms\":{},\"scrape_duration_sum\":{},\
         \"scrape_duration_count\":{},\"scrape_duration_max\":{}}}\n",
        s.requests.load(Relaxed),
        s.samples.load(Relaxed),
        s.series.load(Relaxed),
        s.wire_bytes.load(Relaxed),
        s.raw_bytes.load(Relaxed),
        s.signed.load(Relaxed),
        s.unsigned.load(Relaxed),
        s.bad.load(Relaxed),
        win.max_lag_ms,
        win.last_lag_ms,
        win.scrape_duration_sum,
        win.scrape_duration_count,
        win.scrape_duration_max
    )
}
