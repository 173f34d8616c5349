//! Secrets never reach the logs: the binary runs at debug level with AWS credentials in its
//! environment (SigV4 for remote write), a scrape password and bearer token and a remote write
//! `Authorization` header in its config, and an OTLP sender that sends its own `Authorization`
//! header. Scrapes and remote writes fail and are retried along the way, so the error paths log
//! too. Each secret must reach the server it is meant for, and appear nowhere in what the binary
//! printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

const ACCESS_KEY_ID: &str = "AKIANODETELTESTKEY01";
const SECRET_ACCESS_KEY: &str = "nodetelSecretAccessKeyMustNotBeLogged0001";
const SESSION_TOKEN: &str = "nodetelSessionTokenMustNotBeLogged0002";
const BASIC_PASSWORD: &str = "basic-password-must-not-be-logged-0003";
const BEARER_TOKEN: &str = "bearer-token-must-not-be-logged-0004";
const HEADER_TOKEN: &str = "header-token-must-not-be-logged-0005";
const CLIENT_TOKEN: &str = "client-token-must-not-be-logged-0006";

/// The value of header `name` in a recorded request.
fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Answers 500, 403, 200, 500, 403, 200, ...: retries and refusals along with successes.
fn flaky() -> impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static {
    let n = Arc::new(AtomicU64::new(0));
    move |_, _| match n.fetch_add(1, Ordering::Relaxed) % 3 {
        0 => (500, "try again later".to_owned()),
        1 => (403, "access denied".to_owned()),
        _ => (200, String::new()),
    }
}

#[test]
fn no_secret_reaches_the_logs_at_debug_level() {
    let amp = HttpServer::start(0, flaky());
    let plain = HttpServer::start(0, flaky());
    // Scrape targets: every other scrape is refused.
    let scrapes = Arc::new(AtomicU64::new(0));
    let target = HttpServer::start(0, move |_, _| {
        if scrapes.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            (401, "unauthorized".to_owned())
        } else {
            (200, "scraped_metric 1\n".to_owned())
        }
    });
    let (otlp, telemetry, health) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("secrets.yaml");
    let yaml = format!(
        r#"receivers:
  otlp:
    protocols: {{http: {{endpoint: "127.0.0.1:{otlp}"}}}}
  prometheus:
    config:
      scrape_configs:
        - job_name: basic
          scrape_interval: 200ms
          scrape_timeout: 200ms
          basic_auth: {{username: scraper, password: "${{env:SCRAPE_PASSWORD}}"}}
          static_configs: [{{targets: ["{target}"]}}]
        - job_name: bearer
          scrape_interval: 200ms
          scrape_timeout: 200ms
          authorization: {{credentials: "{BEARER_TOKEN}"}}
          static_configs: [{{targets: ["{target}"]}}]
exporters:
  prometheusremotewrite/amp:
    endpoint: "http://{amp}/api/v1/remote_write"
    auth: {{authenticator: sigv4auth}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
  prometheusremotewrite/plain:
    endpoint: "http://{plain}/api/v1/write"
    headers: {{Authorization: "Bearer {HEADER_TOKEN}"}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
extensions:
  sigv4auth: {{region: us-west-2, service: aps}}
  health_check: {{endpoint: "127.0.0.1:{health}"}}
service:
  extensions: [sigv4auth, health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{telemetry}"}}}}
  pipelines:
    metrics:
      receivers: [otlp, prometheus]
      exporters: [prometheusremotewrite/amp, prometheusremotewrite/plain]
"#,
        target = target.addr,
        amp = amp.addr,
        plain = plain.addr,
    );
    std::fs::write(&config, yaml).unwrap();
    let proc = Running::spawn(
        nodetel()
            .args(["run", "--config"])
            .arg(&config)
            .env("NODETEL_LOG_LEVEL", "debug")
            .env("SCRAPE_PASSWORD", BASIC_PASSWORD)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
            // Credentials come from the environment; nothing may be looked for elsewhere.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none")),
    );

    // An OTLP sender with its own Authorization header: one good request, one malformed.
    let otlp_addr = format!("127.0.0.1:{otlp}");
    eventually(Duration::from_secs(15), "the OTLP receiver", || {
        std::net::TcpStream::connect(&otlp_addr).ok()
    });
    for body in [&b""[..], &b"\x0a\xff\xff\xff\xff\x0f garbage"[..]] {
        let mut s = std::net::TcpStream::connect(&otlp_addr).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_TOKEN}\r\n\
             Content-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        if !answer.starts_with("HTTP/1.1 ") {
            let (out, _) = proc.terminate();
            panic!(
                "no answer ({answer:?}); nodetel said:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // Each secret reached the server it is for, through failures and retries.
    let started = Instant::now();
    let used = || {
        let signed = amp.requests().iter().any(|r| {
            header(r, "authorization").is_some_and(|a| a.contains(&format!("Credential={ACCESS_KEY_ID}/")))
                && header(r, "x-amz-security-token") == Some(SESSION_TOKEN)
        });
        let headed = plain
            .requests()
            .iter()
            .any(|r| header(r, "authorization") == Some(&format!("Bearer {HEADER_TOKEN}")));
        let scraped = target.requests();
        let basic = scraped
            .iter()
            .any(|r| header(r, "authorization") == Some(&format!("Basic {}", base64_basic("scraper", BASIC_PASSWORD))));
        let bearer = scraped
            .iter()
            .any(|r| header(r, "authorization") == Some(&format!("Bearer {BEARER_TOKEN}")));
        let failures = amp.requests().iter().filter(|r| r.status != 200).count() >= 2
            && plain.requests().iter().filter(|r| r.status != 200).count() >= 2
            && scraped.iter().filter(|r| r.status == 401).count() >= 2;
        signed && headed && basic && bearer && failures
    };
    while !used() {
        if started.elapsed() > Duration::from_secs(30) {
            let (out, _) = proc.terminate();
            panic!(
                "the secrets were not all used in 30 s; nodetel said:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (out, _) = proc.terminate();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("DEBUG") && printed.lines().count() > 20,
        "debug logging was on: {printed}"
    );
    let basic = base64_basic("scraper", BASIC_PASSWORD);
    for secret in [
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        SESSION_TOKEN,
        BASIC_PASSWORD,
        basic.as_str(),
        BEARER_TOKEN,
        HEADER_TOKEN,
        CLIENT_TOKEN,
    ] {
        let line = printed.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "a secret was logged: {}", line.unwrap_or_default());
    }
}

/// The base64 of `user:password`, as a Basic `Authorization` header carries it.
fn base64_basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_basic_matches_the_standard_encoding() {
    assert_eq!(base64_basic("Aladdin", "open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_eq!(base64_basic("a", "b"), "YTpi");
}
