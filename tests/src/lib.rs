//! What the integration tests, the sandbox and the benchmark stand on: moto server on a free
//! port, a Lambda Runtime API that drives the real bootstrap binaries, a proxy that injects
//! AWS faults, and the seeding of what the pipeline file names.

pub mod fault_proxy;
pub mod function;
pub mod moto;
pub mod runtime_api;
pub mod seed;

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
