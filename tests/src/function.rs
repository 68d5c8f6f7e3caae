//! A built bootstrap binary running under the Runtime API, as Lambda runs it.

use crate::runtime_api::{Outcome, RuntimeApi};
use crate::{ACCOUNT, REGION};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Function {
    child: Child,
    pub api: RuntimeApi,
    pub started: Instant,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Function {
    /// Starts `binary` with Lambda's environment, pointed at `endpoint` for AWS.
    pub async fn spawn(binary: &Path, endpoint: &str, env: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start().await;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", binary.file_name().unwrap())
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("ACCOUNT_ID", ACCOUNT)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        Function {
            child,
            api,
            started,
            logs,
        }
    }

    /// One invocation, start to finish; fails loudly if the process dies or hangs instead.
    pub async fn invoke(&mut self, payload: impl Into<Vec<u8>>) -> Outcome {
        let outcome = self.api.invoke(payload.into());
        tokio::select! {
            outcome = outcome => outcome.expect("runtime API answered"),
            status = self.child.wait() => panic!(
                "function exited ({status:?}) instead of answering; init error: {:?}; logs:\n{}",
                self.api.init_error(),
                self.logs().join("\n")
            ),
            _ = tokio::time::sleep(Duration::from_secs(60)) => panic!("function did not answer within 60 s"),
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// True while the process runs (it did not panic or exit on bad input).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident memory so far, from the kernel (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}
