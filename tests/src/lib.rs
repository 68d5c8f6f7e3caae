//! What the integration tests, the sandbox and the benchmark stand on: moto server on a free
//! port, a Lambda Runtime API that drives the real bootstrap binaries, a proxy that injects
//! AWS faults, and the seeding of what the pipeline file names.

pub mod fault_proxy;
pub mod function;
pub mod function_url;
pub mod iam_edge;
pub mod lambda_invoke;
pub mod moto;
pub mod runtime_api;
pub mod seed;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Event times for stories played now, `minutes` after the first call in this process (on
/// the minute). The handlers compare event times with the times they record (an alarm that
/// fired before a deployment started is not its fault), so events carry times on that clock.
pub fn story_time(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::DurationRound;
    static START: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        chrono::Utc::now()
            .duration_trunc(chrono::TimeDelta::minutes(1))
            .expect("now is a representable time")
    });
    *start + chrono::TimeDelta::minutes(minutes)
}

/// How EventBridge events write a time (`time`, ECS's `updatedAt`).
pub fn event_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How CloudWatch writes an alarm's state timestamp.
pub fn alarm_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A pipeline file of the tests' own (`tests/fixtures/`): no test reads the example at the root.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures").join(name)).expect("the fixture exists")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repo")
        .to_path_buf()
}

/// A built binary of the workspace, from the profile the caller names (`debug`/`release`).
pub fn built_binary(name: &str, profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build{} -p {name}` first (the test script does)",
        path.display(),
        if profile == "release" { " --release" } else { "" }
    );
    path
}

pub fn event_file(function: &str, name: &str) -> Vec<u8> {
    let path = repo_root().join("events").join(function).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sends `request` on with `client` and answers what came back, or 502 when nothing did: how
/// the layers in front of moto (the fault proxy, the IAM edge) pass a call through.
pub async fn relay(
    client: &hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    match client.request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            Response::from_parts(parts, Full::new(body))
        }
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(err.to_string())));
            *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            response
        }
    }
}

/// Serves HTTP/1 on `listener` until the returned task is aborted, each connection on its own
/// task, every request answered by `handle`.
pub fn serve<H, F>(listener: tokio::net::TcpListener, handle: H) -> tokio::task::JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    })
}
