//! A remote write sink with injectable faults. Each request is decoded and offered to a policy
//! that decides the answer; what the sink stored ("committed") is what the ledger counts. The
//! sink can also stop listening (connection refused) and accept-then-close connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use nodetel_exporters::remote_write::proto::WriteRequest;
use prost::Message;

use super::sigv4::{StrictAuth, verify};

pub const PATH: &str = "/api/v1/write";

/// How the sink answers one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Store and answer 204.
    Accept,
    /// Store nothing; answer `status` with an optional `Retry-After` and a body.
    Refuse(u16, Option<String>, String),
    /// Store, then answer 204 after `delay` (a client that timed out never hears it).
    CommitThenDelay(Duration),
    /// Store nothing; close the connection without an answer.
    Reset,
}

/// A request as the policy sees it.
#[derive(Debug)]
pub struct Call<'a> {
    /// 0-based number of this request.
    pub n: usize,
    pub request: &'a WriteRequest,
    /// Compressed size.
    pub body_len: usize,
}

/// One request and what became of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    /// Answer status; 0 for a reset.
    pub status: u16,
    /// Whether the data was stored.
    pub committed: bool,
    pub request: WriteRequest,
    /// The SigV4 access key, when signed.
    pub key: Option<String>,
    pub retry_after: Option<String>,
}

type Policy = dyn Fn(&Call<'_>) -> Action + Send + Sync;

struct State {
    policy: Arc<Policy>,
    auth: Option<StrictAuth>,
    seen: Vec<Seen>,
    n: usize,
}

/// The sink.
pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Connections still to accept and close at once.
    reset_connections: Arc<AtomicUsize>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }
}

impl Sink {
    /// A sink that accepts everything.
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink {
            addr,
            state: Arc::new(Mutex::new(State {
                policy: Arc::new(|_: &Call<'_>| Action::Accept),
                auth: None,
                seen: Vec::new(),
                n: 0,
            })),
            task: Mutex::new(None),
            reset_connections: Arc::new(AtomicUsize::new(0)),
        };
        sink.serve(listener);
        sink
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let st = self.state.clone();
        let resets = self.reset_connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if resets
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                    .is_ok()
                {
                    drop(stream);
                    continue;
                }
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Stops listening: new connections are refused (open ones finish their request).
    pub async fn go_down(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
        // Let the aborted accept loop drop the listener.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }

    pub fn set_policy(&self, p: impl Fn(&Call<'_>) -> Action + Send + Sync + 'static) {
        self.state.lock().unwrap().policy = Arc::new(p);
    }

    pub fn set_auth(&self, auth: Option<StrictAuth>) {
        self.state.lock().unwrap().auth = auth;
    }

    pub fn update_auth(&self, f: impl FnOnce(&mut StrictAuth)) {
        if let Some(a) = self.state.lock().unwrap().auth.as_mut() {
            f(a);
        }
    }

    /// Accept the next `n` connections and close them at once.
    pub fn reset_next_connections(&self, n: usize) {
        self.reset_connections.store(n, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Stored requests, in arrival order.
    pub fn committed(&self) -> Vec<WriteRequest> {
        self.seen()
            .into_iter()
            .filter(|s| s.committed)
            .map(|s| s.request)
            .collect()
    }

    /// Samples in stored requests.
    pub fn committed_samples(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.committed)
            .map(|s| samples(&s.request))
            .sum()
    }
}

/// Samples in a request.
pub fn samples(r: &WriteRequest) -> usize {
    r.timeseries.iter().map(|t| t.samples.len()).sum()
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Err(std::io::Error::other("body"));
    };
    let request = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .ok()
        .and_then(|raw| WriteRequest::decode(&raw[..]).ok())
        .unwrap_or_default();
    let (policy, auth, n) = {
        let mut st = state.lock().unwrap();
        st.n += 1;
        (st.policy.clone(), st.auth.clone(), st.n - 1)
    };
    let server_now = auth.as_ref().map_or_else(std::time::SystemTime::now, StrictAuth::now);
    let mut key = None;
    let action = match &auth {
        Some(a) => match verify(a, &parts, &body) {
            Ok(k) => {
                key = Some(k);
                None
            }
            Err((status, text)) => Some(Action::Refuse(status, None, text)),
        },
        None => None,
    };
    let action = action.unwrap_or_else(|| {
        policy(&Call {
            n,
            request: &request,
            body_len: body.len(),
        })
    });
    let record = |status: u16, committed: bool, retry_after: Option<String>| {
        state.lock().unwrap().seen.push(Seen {
            at: Instant::now(),
            status,
            committed,
            request: request.clone(),
            key: key.clone(),
            retry_after,
        });
    };
    let (status, retry_after, text) = match action {
        Action::Accept => {
            record(204, true, None);
            (204, None, String::new())
        }
        Action::Refuse(status, ra, text) => {
            record(status, false, ra.clone());
            (status, ra, text)
        }
        Action::CommitThenDelay(d) => {
            record(204, true, None);
            tokio::time::sleep(d).await;
            (204, None, String::new())
        }
        Action::Reset => {
            record(0, false, None);
            // An error from the service makes hyper drop the connection without an answer.
            return Err(std::io::Error::other("reset"));
        }
    };
    let mut b = Response::builder()
        .status(status)
        .header("date", httpdate::fmt_http_date(server_now));
    if let Some(ra) = retry_after {
        b = b.header("retry-after", ra);
    }
    Ok(b.body(Full::new(Bytes::from(text))).unwrap())
}
