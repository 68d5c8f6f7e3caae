//! A proxy in front of moto that answers chosen AWS calls with throttling or 5xx errors, the
//! way the real services do, and counts the calls it forwards.

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

#[derive(Clone, Copy, Debug)]
pub enum FaultKind {
    /// HTTP 400 `ThrottlingException`, which the SDK retries and then surfaces.
    Throttling,
    /// HTTP 500 `InternalFailure`.
    ServerError,
}

#[derive(Clone, Debug)]
struct Fault {
    /// Matched against the `X-Amz-Target` header, e.g. `UpdateService` or `DynamoDB_20120810.PutItem`.
    operation: String,
    kind: FaultKind,
    /// How many matching calls go through before the faults start.
    pass_first: usize,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    seen: Vec<String>,
}

pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let serving = state.clone();
        let server = crate::serve(listener, move |req| {
            forward(req, serving.clone(), client.clone(), upstream.clone())
        });
        FaultProxy {
            endpoint,
            state,
            server,
        }
    }

    /// Every call whose target contains `operation` fails with `kind`, after `pass_first` pass.
    pub fn fail(&self, operation: &str, kind: FaultKind, pass_first: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            operation: operation.into(),
            kind,
            pass_first,
        });
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

async fn forward(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("query")
        .to_owned();
    let injected = {
        let mut state = state.lock().unwrap();
        state.seen.push(target.clone());
        let seen_before = state.seen.iter().filter(|t| **t == target).count() - 1;
        state
            .faults
            .iter()
            .find(|f| target.contains(&f.operation) && seen_before >= f.pass_first)
            .map(|f| f.kind)
    };
    if let Some(kind) = injected {
        let (status, code) = match kind {
            FaultKind::Throttling => (StatusCode::BAD_REQUEST, "ThrottlingException"),
            FaultKind::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
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

    let (mut parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parts.uri = format!("{upstream}{path}").parse().expect("upstream URI");
    match client.request(Request::from_parts(parts, Full::new(body))).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(err.to_string())));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}
