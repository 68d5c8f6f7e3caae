//! The Lambda Runtime API, as the real service speaks it to a custom runtime: the function
//! polls `GET …/invocation/next` and posts a response or an error per invocation.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(serde_json::Value),
    Error { error_type: String, message: String },
}

impl Outcome {
    pub fn response(self) -> serde_json::Value {
        match self {
            Outcome::Response(value) => value,
            Outcome::Error { error_type, message } => panic!("invocation failed: {error_type}: {message}"),
        }
    }

    pub fn error(self) -> (String, String) {
        match self {
            Outcome::Error { error_type, message } => (error_type, message),
            Outcome::Response(value) => panic!("invocation succeeded: {value}"),
        }
    }
}

struct Invocation {
    id: String,
    payload: Vec<u8>,
    done: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: AsyncMutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: Mutex<Option<Instant>>,
    init_error: Mutex<Option<String>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    sender: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

const BASE: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind runtime API");
        let addr = listener.local_addr().expect("runtime API address");
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: AsyncMutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            first_poll: Mutex::new(None),
            init_error: Mutex::new(None),
        });
        let serving = shared.clone();
        let server = crate::serve(listener, move |req| route(req, serving.clone()));
        RuntimeApi {
            addr,
            sender,
            shared,
            next_id: AtomicU64::new(1),
            server,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues one invocation; the returned receiver yields its outcome.
    pub fn invoke(&self, payload: Vec<u8>) -> oneshot::Receiver<Outcome> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, outcome) = oneshot::channel();
        let id = format!("8f5e2b1c-0000-4000-8000-{n:012}");
        self.sender
            .send(Invocation { id, payload, done })
            .expect("runtime API is running");
        outcome
    }

    /// When the function first asked for work: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.shared.first_poll.lock().unwrap()
    }

    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().unwrap().clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn route(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET && path == format!("{BASE}/invocation/next") {
        shared.first_poll.lock().unwrap().get_or_insert_with(Instant::now);
        let Some(invocation) = shared.queue.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, "runtime API stopped"));
        };
        let deadline = SystemTime::now() + Duration::from_secs(30);
        let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
        shared
            .in_flight
            .lock()
            .unwrap()
            .insert(invocation.id.clone(), invocation.done);
        let mut response = reply(StatusCode::OK, invocation.payload);
        let headers = response.headers_mut();
        headers.insert("lambda-runtime-aws-request-id", invocation.id.parse().unwrap());
        headers.insert("lambda-runtime-deadline-ms", deadline_ms.to_string().parse().unwrap());
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:under-test"
                .parse()
                .unwrap(),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".parse().unwrap(),
        );
        return Ok(response);
    }
    if req.method() != Method::POST {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown route"));
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if path == format!("{BASE}/init/error") {
        *shared.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
        return Ok(reply(StatusCode::ACCEPTED, "{}"));
    }
    let Some(rest) = path.strip_prefix(&format!("{BASE}/invocation/")) else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown route"));
    };
    let (id, outcome) = if let Some(id) = rest.strip_suffix("/response") {
        let value = serde_json::from_slice(&body).unwrap_or_else(|_| String::from_utf8_lossy(&body).into());
        (id, Outcome::Response(value))
    } else if let Some(id) = rest.strip_suffix("/error") {
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        (
            id,
            Outcome::Error {
                error_type: field("errorType"),
                message: field("errorMessage"),
            },
        )
    } else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown route"));
    };
    match shared.in_flight.lock().unwrap().remove(id) {
        Some(done) => {
            let _ = done.send(outcome);
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        None => Ok(reply(StatusCode::BAD_REQUEST, "unknown request id")),
    }
}
