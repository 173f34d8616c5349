//! A strict remote write receiver for tests: decodes snappy + protobuf, checks every required
//! header, verifies SigV4 signatures independently of aws-sigv4 (canonical request and HMAC
//! chain recomputed here), and answers from a script of faults.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use nodetel_core::component::ComponentId;
use nodetel_core::config::BuildContext;
use nodetel_core::telemetry::Registry;
use nodetel_exporters::remote_write::proto::WriteRequest;
use nodetel_exporters::remote_write::{RemoteWriteConfig, RemoteWriteExporter, Signer};
use prost::Message;
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "AKIDTESTNODETEL";
pub const SECRET_KEY: &str = "test/secret+key/not-real";
pub const REGION: &str = "us-west-2";
pub const PATH: &str = "/workspaces/ws-test/api/v1/remote_write";

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    Status(u16, Option<String>),
    /// Wait, then accept (if the client is still there).
    Slow(Duration),
}

/// One request as seen by the server.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub status: u16,
    pub request: WriteRequest,
}

#[derive(Default)]
pub struct State {
    pub script: VecDeque<Reply>,
    /// Answer when the script is empty: `None` = 200.
    pub default_status: Option<u16>,
    /// Delay of every unscripted answer.
    pub default_delay: Duration,
    pub seen: Vec<Seen>,
    pub violations: Vec<String>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TestServer { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, PATH)
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn set_default(&self, status: Option<u16>) {
        self.state.lock().unwrap().default_status = status;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().default_delay = delay;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// Samples in accepted requests, per series (label text), in arrival order.
    pub fn accepted(&self) -> BTreeMap<String, Vec<(i64, f64)>> {
        collect(self.seen().iter().filter(|s| s.status == 200))
    }

    /// Samples in requests answered with `status`.
    pub fn answered(&self, status: u16) -> BTreeMap<String, Vec<(i64, f64)>> {
        collect(self.seen().iter().filter(|s| s.status == status))
    }

    pub fn accepted_samples(&self) -> usize {
        self.accepted().values().map(Vec::len).sum()
    }
}

fn collect<'a>(seen: impl Iterator<Item = &'a Seen>) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for s in seen {
        for ts in &s.request.timeseries {
            let key = ts
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(",");
            out.entry(key)
                .or_default()
                .extend(ts.samples.iter().map(|x| (x.timestamp, x.value)));
        }
    }
    out
}

fn text(res: Response<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(res)
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(Response::builder().status(400).body(Full::new(Bytes::new())).unwrap()),
    };
    let mut problems = check_request(&parts, &body);
    let decoded = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .map_err(|e| format!("snappy: {e}"))
        .and_then(|raw| WriteRequest::decode(&raw[..]).map_err(|e| format!("protobuf: {e}")));
    let request = match decoded {
        Ok(r) => r,
        Err(e) => {
            problems.push(e);
            WriteRequest::default()
        }
    };
    for ts in &request.timeseries {
        let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        if names.windows(2).any(|w| w[0] >= w[1]) {
            problems.push(format!("labels not sorted and unique: {names:?}"));
        }
        if ts.labels.iter().any(|l| l.value.is_empty()) {
            problems.push("empty label value".into());
        }
    }
    let reply = {
        let mut st = state.lock().unwrap();
        st.violations.extend(problems);
        st.script.pop_front()
    };
    let (status, retry_after) = match reply {
        Some(Reply::Ok) => (200, None),
        Some(Reply::Status(s, ra)) => (s, ra),
        Some(Reply::Slow(d)) => {
            // If the client gives up, hyper drops this future and nothing is recorded.
            tokio::time::sleep(d).await;
            (200, None)
        }
        None => {
            let (status, delay) = {
                let st = state.lock().unwrap();
                (st.default_status.unwrap_or(200), st.default_delay)
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            (status, None)
        }
    };
    state.lock().unwrap().seen.push(Seen {
        at: Instant::now(),
        status,
        request,
    });
    let mut b = Response::builder().status(status);
    if let Some(ra) = retry_after {
        b = b.header("retry-after", ra);
    }
    let body = if status == 200 {
        Bytes::new()
    } else {
        Bytes::from(format!("scripted {status}"))
    };
    text(b.body(Full::new(body)).unwrap())
}

fn check_request(parts: &hyper::http::request::Parts, body: &[u8]) -> Vec<String> {
    let mut p = Vec::new();
    let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if parts.method != hyper::Method::POST {
        p.push(format!("method {}", parts.method));
    }
    if parts.uri.path() != PATH {
        p.push(format!("path {}", parts.uri.path()));
    }
    for (name, want) in [
        ("content-encoding", "snappy"),
        ("content-type", "application/x-protobuf"),
        ("x-prometheus-remote-write-version", "0.1.0"),
    ] {
        if h(name).as_deref() != Some(want) {
            p.push(format!("{name}: {:?}", h(name)));
        }
    }
    if !h("user-agent").is_some_and(|u| u.starts_with("nodetel/")) {
        p.push(format!("user-agent: {:?}", h("user-agent")));
    }
    if let Err(e) = verify_sigv4(parts, body) {
        p.push(format!("sigv4: {e}"));
    }
    p
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Recomputes the SigV4 signature from what arrived on the wire.
pub fn verify_sigv4(parts: &hyper::http::request::Parts, body: &[u8]) -> Result<(), String> {
    let auth = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("algorithm in {auth:?}"))?;
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let (cred, signed, sig) = (
        cred.ok_or("no Credential")?,
        signed.ok_or("no SignedHeaders")?,
        sig.ok_or("no Signature")?,
    );
    let mut c = cred.split('/');
    let (key, date, region, service, term) = (c.next(), c.next(), c.next(), c.next(), c.next());
    if key != Some(ACCESS_KEY) || region != Some(REGION) || service != Some("aps") || term != Some("aws4_request") {
        return Err(format!("credential scope {cred}"));
    }
    let date = date.ok_or("no date")?;
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("no x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err("x-amz-date does not match the scope date".into());
    }
    let signed_list: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date", "content-type", "content-encoding"] {
        if !signed_list.contains(&required) {
            return Err(format!("{required} not signed"));
        }
    }
    let mut canonical_headers = String::new();
    for name in &signed_list {
        let value = parts
            .headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("signed header {name} missing"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let canonical = format!(
        "POST\n{}\n{}\n{}\n{}\n{}",
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        canonical_headers,
        signed,
        hex(&Sha256::digest(body))
    );
    let scope = format!("{date}/{REGION}/aps/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
    let k = hmac(&k, REGION.as_bytes());
    let k = hmac(&k, b"aps");
    let k = hmac(&k, b"aws4_request");
    let want = hex(&hmac(&k, to_sign.as_bytes()));
    if want != sig {
        return Err(format!("signature mismatch (canonical request:\n{canonical})"));
    }
    Ok(())
}

pub fn signer() -> Arc<Signer> {
    Arc::new(Signer::with_credentials(
        REGION,
        "aps",
        Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"),
    ))
}

pub fn context(name: &str) -> BuildContext {
    BuildContext {
        id: ComponentId::parse(&format!("prometheusremotewrite/{name}")).unwrap(),
        hostname: "node-1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    }
}

/// A config for tests: short intervals, small requests.
pub fn config(url: &str) -> RemoteWriteConfig {
    let mut c = RemoteWriteConfig::for_endpoint(url);
    c.timeout = Duration::from_millis(800);
    c.retry_on_failure.initial_interval = Duration::from_millis(10);
    c.retry_on_failure.max_interval = Duration::from_millis(100);
    c.batch_send_deadline = Duration::from_millis(50);
    c.max_samples_per_send = 40;
    c.shutdown_flush_timeout = Duration::from_secs(15);
    c
}

pub fn exporter(cfg: &RemoteWriteConfig, name: &str) -> RemoteWriteExporter {
    RemoteWriteExporter::new(cfg, &context(name), Some(signer())).unwrap()
}

/// `series` series of one sample each at `ts`, value `ts + series index`.
pub fn batch(series: usize, ts: i64) -> nodetel_core::batch::Batch {
    use nodetel_core::labels::Labels;
    use nodetel_core::sample::Sample;
    let mut b = nodetel_core::batch::Batch::with_capacity(series);
    for i in 0..series {
        let idx = i.to_string();
        let labels = Labels::from_pairs([("__name__", "test_metric"), ("idx", idx.as_str()), ("job", "t")]).unwrap();
        b.push(labels, Sample::new(ts, ts as f64 + i as f64));
    }
    b
}

/// Waits until `cond` holds, up to `limit`.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Checks each series' timestamps never go backwards.
pub fn assert_in_order(per_series: &BTreeMap<String, Vec<(i64, f64)>>) {
    for (k, v) in per_series {
        assert!(v.windows(2).all(|w| w[0].0 <= w[1].0), "series {k} out of order: {v:?}");
    }
}
