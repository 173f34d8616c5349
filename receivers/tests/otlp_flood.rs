//! Hostile OTLP senders against a running receiver: floods of concurrent connections sending
//! good and malformed requests for seconds over HTTP and gRPC, idle and half-sent connections,
//! oversized headers and compressed bombs. Every accepted point arrives exactly once, every
//! refused request is answered with the right status and counted as an error, memory stays
//! bounded and the receiver still serves a good request afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gzip_bomb;
mod otlp_support;

use gzip_bomb::gzip_bomb;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use otlp_support::Running;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::Channel;

/// One test at a time: the memory checks read the peak RSS of the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PROTOBUF: &str = "application/x-protobuf";
const FLOOD_FOR: Duration = Duration::from_secs(3);

/// One gauge point `flood{sender="<sender>"} <n>`, stamped so that a sender's points are ordered.
fn point(sender: usize, n: u64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "flood".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![KeyValue {
                                key: "sender".into(),
                                value: Some(AnyValue {
                                    value: Some(Value::StringValue(sender.to_string())),
                                }),
                                ..Default::default()
                            }],
                            time_unix_nano: 1_700_000_000_000_000_000 + n * 1_000_000,
                            value: Some(NumberValue::AsDouble(n as f64)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Per sender, the values of the points the receiver accepted.
type Accepted = BTreeMap<usize, BTreeSet<u64>>;

/// Per sender, every delivered value of `flood`, with repeats.
fn delivered(r: &Running) -> BTreeMap<usize, Vec<u64>> {
    let mut out: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (series, value) in r.series() {
        if let Some(rest) = series.strip_prefix("flood{sender=\"") {
            let sender: usize = rest.trim_end_matches("\"}").parse().unwrap();
            out.entry(sender).or_default().push(value as u64);
        }
    }
    out
}

/// Waits until what was delivered is exactly what was accepted: each point once, none extra.
async fn assert_delivered_exactly(r: &Running, accepted: &Accepted) {
    let want: BTreeMap<usize, Vec<u64>> = accepted
        .iter()
        .map(|(s, v)| (*s, v.iter().copied().collect()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut got = delivered(r);
        got.values_mut().for_each(|v| v.sort_unstable());
        if got == want {
            return;
        }
        let (n_got, n_want): (usize, usize) = (got.values().map(Vec::len).sum(), want.values().map(Vec::len).sum());
        assert!(
            n_got <= n_want,
            "more points delivered ({n_got}) than accepted ({n_want})"
        );
        assert!(
            Instant::now() < deadline,
            "delivered {n_got} of {n_want} accepted points"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_flood_of_good_and_malformed_requests_is_answered_counted_and_delivered_exactly() {
    let _serial = SERIAL.lock().await;
    let r = Running::start("").await;
    let url = format!("http://{}/v1/metrics", r.http);
    let bad = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for sender in 0..48 {
        let (url, bad) = (url.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            // A client per sender: its own connection, kept alive between requests.
            let client = reqwest::Client::new();
            let mut accepted = BTreeSet::new();
            let mut n = 0u64;
            while start.elapsed() < FLOOD_FOR {
                n += 1;
                let (body, content_type) = match n % 4 {
                    0 => (b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(), PROTOBUF),
                    1 => (serde_json::to_vec(&point(sender, n)).unwrap(), "application/json"),
                    _ => (point(sender, n).encode_to_vec(), PROTOBUF),
                };
                let resp = client
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                match (n % 4, resp.status().as_u16()) {
                    (0, 400) => {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    (1..=3, 200) => {
                        accepted.insert(n);
                    }
                    (kind, status) => panic!("sender {sender}, request {n} (kind {kind}): status {status}"),
                }
                let _ = resp.bytes().await.unwrap();
            }
            (sender, accepted)
        }));
    }
    let mut accepted = Accepted::new();
    for t in tasks {
        let (sender, points) = t.await.unwrap();
        accepted.insert(sender, points);
    }
    let total: usize = accepted.values().map(BTreeSet::len).sum();
    let bad = bad.load(Ordering::Relaxed);
    eprintln!(
        "HTTP flood: 48 senders, {total} points accepted and {bad} malformed requests refused in {:?}",
        start.elapsed()
    );
    assert!(total > 48 * 10, "the flood was a trickle: {total} requests");
    assert_delivered_exactly(&r, &accepted).await;
    assert_eq!(r.telemetry.errors(), bad, "each refused request counted once");

    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", PROTOBUF)
        .body(point(999, 1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the receiver still serves");
    assert!(r.wait_for(|l| l.get("flood{sender=\"999\"}") == Some(&1.0)).await);
    r.stop().await;
}

/// A message whose field 1 is a varint, where the receiver expects `ResourceMetrics` messages.
#[derive(Clone, PartialEq, prost::Message)]
struct Bogus {
    #[prost(uint64, tag = "1")]
    resource_metrics: u64,
}

async fn channel(r: &Running) -> Channel {
    Channel::from_shared(format!("http://{}", r.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_flood_of_good_and_malformed_calls_is_answered_counted_and_delivered_exactly() {
    let _serial = SERIAL.lock().await;
    let r = Running::start("").await;
    let bad = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for sender in 0..32 {
        // A channel (one HTTP/2 connection) per sender.
        let ch = channel(&r).await;
        let bad = bad.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = MetricsServiceClient::new(ch.clone());
            let mut raw = tonic::client::Grpc::new(ch);
            let mut accepted = BTreeSet::new();
            let mut n = 0u64;
            while start.elapsed() < FLOOD_FOR {
                n += 1;
                if n.is_multiple_of(4) {
                    raw.ready().await.unwrap();
                    let codec = tonic_prost::ProstCodec::<Bogus, Bogus>::default();
                    let path = http::uri::PathAndQuery::from_static(
                        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                    );
                    let err = raw
                        .unary(tonic::Request::new(Bogus { resource_metrics: n }), path, codec)
                        .await
                        .unwrap_err();
                    assert_eq!(err.code(), Code::Internal, "{err:?}");
                    bad.fetch_add(1, Ordering::Relaxed);
                } else {
                    client.export(point(sender, n)).await.unwrap();
                    accepted.insert(n);
                }
            }
            (sender, accepted)
        }));
    }
    let mut accepted = Accepted::new();
    for t in tasks {
        let (sender, points) = t.await.unwrap();
        accepted.insert(sender, points);
    }
    let total: usize = accepted.values().map(BTreeSet::len).sum();
    let bad = bad.load(Ordering::Relaxed);
    eprintln!(
        "gRPC flood: 32 senders, {total} points accepted and {bad} malformed calls refused in {:?}",
        start.elapsed()
    );
    assert!(total > 32 * 10, "the flood was a trickle: {total} calls");
    assert_delivered_exactly(&r, &accepted).await;
    assert_eq!(r.telemetry.errors(), bad, "each refused call counted once");

    let mut client = MetricsServiceClient::new(channel(&r).await);
    client.export(point(999, 1)).await.unwrap();
    assert!(r.wait_for(|l| l.get("flood{sender=\"999\"}") == Some(&1.0)).await);
    r.stop().await;
}

/// Sends one good OTLP/HTTP request on a fresh connection; returns its status.
async fn good_http_request(r: &Running, value: u64) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{}/v1/metrics", r.http))
        .header("content-type", PROTOBUF)
        .body(point(7, value).encode_to_vec())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Reads until the receiver closes `conn`; returns what it answered (at most 25 s).
async fn answer(conn: &mut TcpStream) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(Duration::from_secs(25), conn.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_oversized_requests_are_cut_off_counted_and_block_no_one() {
    let _serial = SERIAL.lock().await;
    let r = Running::start("").await;
    const EACH: usize = 40;
    let (mut silent, mut half_head, mut half_body, mut grpc_silent) = (vec![], vec![], vec![], vec![]);
    for _ in 0..EACH {
        silent.push(TcpStream::connect(r.http).await.unwrap());
        let mut c = TcpStream::connect(r.http).await.unwrap();
        c.write_all(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Le")
            .await
            .unwrap();
        half_head.push(c);
        let mut c = TcpStream::connect(r.http).await.unwrap();
        c.write_all(
            b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nab",
        )
        .await
        .unwrap();
        half_body.push(c);
        grpc_silent.push(TcpStream::connect(r.grpc).await.unwrap());
    }
    let opened = Instant::now();
    assert_eq!(good_http_request(&r, 1).await, 200);
    let mut client = MetricsServiceClient::new(channel(&r).await);
    client.export(point(8, 1)).await.unwrap();
    assert!(opened.elapsed() < Duration::from_secs(3), "{:?}", opened.elapsed());

    // A 1 MiB header: refused with 431 before any body is read.
    let mut conn = TcpStream::connect(r.http).await.unwrap();
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = conn.write_all(head.as_bytes()).await;
    let big = answer(&mut conn).await.expect("the connection is closed");
    assert!(
        big.starts_with("HTTP/1.1 431"),
        "{}",
        big.lines().next().unwrap_or_default()
    );

    // Ten seconds after they opened, every silent or half-sent HTTP connection is closed; a body
    // that never came is answered 408.
    for mut c in half_body {
        let a = answer(&mut c).await.expect("a half-sent body is cut off");
        assert!(
            a.starts_with("HTTP/1.1 408"),
            "{}",
            a.lines().next().unwrap_or_default()
        );
    }
    for mut c in half_head.into_iter().chain(silent) {
        assert!(answer(&mut c).await.is_some(), "a silent or half-sent head is cut off");
    }
    // gRPC connections that never send the HTTP/2 preface are closed as well.
    for mut c in grpc_silent {
        assert!(answer(&mut c).await.is_some(), "a silent gRPC connection is cut off");
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_secs(9),
        "connections were cut off early, after {took:?}"
    );
    assert!(took < Duration::from_secs(20), "connections were held for {took:?}");
    let counted = 1 + 4 * EACH as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while r.telemetry.errors() < counted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        r.telemetry.errors(),
        counted,
        "each refused request or connection counted once"
    );

    assert_eq!(good_http_request(&r, 2).await, 200, "the receiver still serves");
    assert!(r.wait_for(|l| l.get("flood{sender=\"7\"}") == Some(&2.0)).await);
    assert_eq!(r.telemetry.errors(), counted);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bombs_are_refused_without_inflating_them() {
    let _serial = SERIAL.lock().await;
    // HTTP bodies are limited to 64 KiB here, gRPC messages to the default 4 MiB.
    let r = Running::start("").await;
    // 48 MiB of zeros in under 64 KiB: refused once 64 KiB are inflated, never inflated whole.
    let small_bomb = gzip_bomb(48);
    assert!(small_bomb.len() < 64 * 1024, "{}", small_bomb.len());
    reset_peak_rss();
    let before = rss();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/metrics", r.http))
        .header("content-type", PROTOBUF)
        .header("content-encoding", "gzip")
        .body(small_bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let http_grew = peak_rss().saturating_sub(before);

    // gRPC: a length-prefixed message flagged as compressed, holding 256 MiB of zeros.
    let bomb = gzip_bomb(256);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    reset_peak_rss();
    let before = rss();
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bomb);
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = client
        .post(format!(
            "http://{}/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            r.grpc
        ))
        .header("content-type", "application/grpc")
        .header("grpc-encoding", "gzip")
        .header("te", "trailers")
        .body(frame)
        .send()
        .await
        .unwrap();
    let status = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let _ = resp.bytes().await;
    let grpc_grew = peak_rss().saturating_sub(before);
    eprintln!(
        "bombs: HTTP peak RSS +{} MiB, gRPC peak RSS +{} MiB (grpc-status {status:?})",
        http_grew / MIB,
        grpc_grew / MIB
    );
    assert!(http_grew < 16 * MIB, "HTTP: peak RSS grew {} MiB", http_grew / MIB);
    assert!(grpc_grew < 32 * MIB, "gRPC: peak RSS grew {} MiB", grpc_grew / MIB);
    assert_eq!(r.telemetry.errors(), 1 + u64::from(status.is_some_and(|s| s != "0")));
    assert_eq!(good_http_request(&r, 3).await, 200, "the receiver still serves");
    r.stop().await;
}
