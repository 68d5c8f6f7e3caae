//! A proxy in front of moto that answers chosen AWS calls with throttling or 5xx errors, the
//! way the real services do, holds chosen calls so a test can act while a handler is midway,
//! and counts the calls it forwards.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 400 `ThrottlingException`, which the SDK retries and then surfaces.
    Throttling,
    /// HTTP 500 `InternalFailure`.
    ServerError,
    /// The request reaches the emulator and takes effect; the caller gets HTTP 500
    /// `InternalFailure` instead of the answer (a reply lost on the way back).
    AnswerLost,
}

#[derive(Clone, Debug)]
struct Fault {
    /// Matched against the `X-Amz-Target` header, e.g. `UpdateService` or `DynamoDB_20120810.PutItem`.
    operation: String,
    kind: FaultKind,
    /// How many matching calls go through before the faults start.
    pass_first: usize,
    /// Only the first call after those fails; the rest go through again.
    once: bool,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    seen: Vec<String>,
    /// Operations whose calls wait until `release`.
    holds: Vec<String>,
    waiting: usize,
}

pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    released: Arc<tokio::sync::watch::Sender<bool>>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let released = Arc::new(tokio::sync::watch::Sender::new(true));
        let (serving, gate) = (state.clone(), released.clone());
        let server = crate::serve(listener, move |req| {
            forward(req, serving.clone(), gate.subscribe(), client.clone(), upstream.clone())
        });
        FaultProxy {
            endpoint,
            state,
            released,
            server,
        }
    }

    /// Every call whose target contains `operation` fails with `kind`, after `pass_first` pass.
    pub fn fail(&self, operation: &str, kind: FaultKind, pass_first: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            operation: operation.into(),
            kind,
            pass_first,
            once: false,
        });
    }

    /// Only the call after the first `pass_first` matching ones fails with `kind`: an SDK retry
    /// of it goes through.
    pub fn fail_once(&self, operation: &str, kind: FaultKind, pass_first: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            operation: operation.into(),
            kind,
            pass_first,
            once: true,
        });
    }

    /// Every call whose target contains `operation` waits, unanswered, until `release`.
    pub fn hold(&self, operation: &str) {
        self.state.lock().unwrap().holds.push(operation.into());
        self.released.send_replace(false);
    }

    /// Waits until `count` calls are held (at most 10 s).
    pub async fn wait_held(&self, count: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.state.lock().unwrap().waiting < count {
            assert!(std::time::Instant::now() < deadline, "{count} calls were never held");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Lets the held calls through, and stops holding.
    pub fn release(&self) {
        let mut state = self.state.lock().unwrap();
        state.holds.clear();
        state.waiting = 0;
        self.released.send_replace(true);
    }

    pub fn heal(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Operations called so far (the `X-Amz-Target` header, or the `Action` of query APIs).
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The operation a request calls: the `X-Amz-Target` header of JSON APIs
/// (`DynamoDB_20120810.PutItem`), or the `Action` of query APIs as `<Action>` (SNS `Publish`).
fn call_name(path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.to_owned();
    }
    // Smithy RPC v2 CBOR (CloudWatch): `/service/<service>/operation/<operation>`.
    if let Some((service, operation)) = path.strip_prefix("/service/").and_then(|p| p.split_once("/operation/")) {
        return format!("{service}.{operation}");
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_owned()
}

async fn forward(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    mut released: tokio::sync::watch::Receiver<bool>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let target = call_name(parts.uri.path(), &parts.headers, &body);
    let held = {
        let mut state = state.lock().unwrap();
        let held = state.holds.iter().any(|h| target.contains(h.as_str()));
        state.waiting += usize::from(held);
        held
    };
    if held {
        let _ = released.wait_for(|released| *released).await;
    }
    let injected = {
        let mut state = state.lock().unwrap();
        state.seen.push(target.clone());
        let seen_before = state.seen.iter().filter(|t| **t == target).count() - 1;
        state
            .faults
            .iter()
            .find(|f| {
                target.contains(&f.operation)
                    && (seen_before == f.pass_first || (!f.once && seen_before > f.pass_first))
            })
            .map(|f| f.kind)
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parts.uri = format!("{upstream}{path}").parse().expect("upstream URI");
    let request = Request::from_parts(parts, Full::new(body));
    if let Some(kind) = injected {
        let (status, code) = match kind {
            FaultKind::Throttling => (StatusCode::BAD_REQUEST, "ThrottlingException"),
            FaultKind::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
            FaultKind::AnswerLost => {
                let _ = client.request(request).await;
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure")
            }
        };
        let body = format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#);
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert("x-amzn-errortype", code.parse().unwrap());
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1".parse().unwrap());
        return Ok(response);
    }

    Ok(crate::relay(&client, request).await)
}
