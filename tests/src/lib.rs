//! What the integration tests, the sandbox and the benchmark stand on: moto server on a free
//! port, a Lambda Runtime API that drives the real bootstrap binaries, a proxy that injects
//! AWS faults, and the seeding of what the pipeline file names.

pub mod fault_proxy;
pub mod function;
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
