//! Scrape targets: `count` listeners on consecutive loopback ports, each serving its own body of
//! `series` series at any path, with new values on every scrape.

use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::body::Body;
use crate::http;

/// Serves the targets until the process is killed.
pub(crate) fn serve(port: u16, count: u16, series: usize) -> io::Result<()> {
    let mut listeners = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        listeners.push(TcpListener::bind(("127.0.0.1", port + i))?);
    }
    let mut handles = Vec::new();
    let mut rendered = 0;
    for (i, l) in listeners.into_iter().enumerate() {
        let body = Body::new(series, i as u64 * 1_000_003);
        rendered = body.series_count();
        let body = Arc::new(Mutex::new(body));
        handles.push(thread::spawn(move || accept(l, body)));
    }
    eprintln!(
        "targets: {count} x {rendered} series on 127.0.0.1:{port}..{}",
        port + count - 1
    );
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

fn accept(l: TcpListener, body: Arc<Mutex<Body>>) {
    for conn in l.incoming().flatten() {
        let body = body.clone();
        thread::spawn(move || {
            let _ = handle(conn, &body);
        });
    }
}

fn handle(conn: TcpStream, body: &Mutex<Body>) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut scratch = Vec::new();
    while let Some(req) = http::read_request(&mut r, std::mem::take(&mut scratch))? {
        scratch = req.body;
        let mut b = body.lock().unwrap_or_else(|e| e.into_inner());
        b.next_scrape();
        http::respond(&mut w, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &b.bytes)?;
    }
    Ok(())
}
