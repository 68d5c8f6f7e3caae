//! What every function's `main` does before it serves events: logs, config, clients.

use crate::domain::pipeline::{Pipeline, PipelineError};

#[derive(thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("reading pipeline file {path}: {error}")]
    PipelineFile { path: String, error: std::io::Error },
    #[error("reading the pipeline in force: {0}")]
    PipelineStore(String),
    #[error("the stack holds no pipeline yet: push one with `pipectl pipeline push FILE --stack STACK`")]
    NoPipeline,
    #[error("PIPELINE_TTL_SECONDS `{0}` is not a whole number of seconds")]
    PipelineTtl(String),
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("SSL_CERT_FILE {path}: {reason}")]
    CertFile { path: String, reason: String },
}

/// `main` returning this prints it with `Debug`: make that the readable message.
impl std::fmt::Debug for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// JSON lines when Lambda's log format is JSON (as the template sets), text otherwise.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// As `init_logging`, for functions whose events or requests carry approval tokens (the
/// approval page's paths, deploy-on-push's Publish bodies): the modules that log raw payloads
/// at TRACE (the runtime's events, the SDK's and the HTTP stack's requests) are held at DEBUG
/// by a filter of their own, which no `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` setting lifts.
pub fn init_logging_without_payloads() {
    use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter, Targets};
    use lambda_runtime::tracing::subscriber::{self, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let requested = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(PAYLOAD_LOGGERS.map(|target| (target, LevelFilter::DEBUG)));
    let logs = subscriber::fmt::layer().with_target(false).without_time();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    if json {
        subscriber::registry()
            .with(logs.json().with_filter(requested).with_filter(cap))
            .init();
    } else {
        subscriber::registry()
            .with(logs.with_filter(requested).with_filter(cap))
            .init();
    }
}

/// Modules that log whole events or requests at TRACE.
const PAYLOAD_LOGGERS: [&str; 10] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sigv4",
    "hyper",
    "hyper_util",
    "h2",
];

/// The file `PIPELINE_FILE` names (tests, local runs), if it is set.
pub fn pipeline_file() -> Result<Option<Pipeline>, InitError> {
    match std::env::var("PIPELINE_FILE") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).map_err(|error| InitError::PipelineFile { path, error })?;
            Ok(Some(Pipeline::parse(&text)?))
        }
        Err(_) => Ok(None),
    }
}

pub fn env(name: &'static str) -> Result<String, InitError> {
    std::env::var(name).map_err(|_| InitError::MissingEnv(name))
}

/// The roots every AWS endpoint chains to.
#[cfg(feature = "aws")]
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../../certs/amazon-trust-services.pem");

#[cfg(feature = "aws")]
/// Region, credentials and `AWS_ENDPOINT_URL` from the environment, as Lambda provides them.
///
/// Two things the SDK's defaults do at init that a Lambda function does not need, measured
/// with callgrind: the default credential chain builds an STS client for web-identity
/// credentials (a fifth of init; Lambda hands credentials in the environment), and the
/// HTTP client parses every system root certificate (8× the rest of init). TLS trusts the
/// Amazon Trust Services roots instead, plus the file `SSL_CERT_FILE` names, if any (a
/// local emulator's CA).
pub async fn aws_config() -> Result<aws_config::SdkConfig, InitError> {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut trust = TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES);
    if let Ok(path) = std::env::var("SSL_CERT_FILE") {
        trust = trust.with_pem_certificate(read_certificates(&path)?);
    }
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| InitError::CertFile {
            path: "(trust store)".into(),
            reason: e.to_string(),
        })?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https();
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
        // Bounded calls, so a hung one fails (and retries) well inside the function's 30 s.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(2))
                .operation_attempt_timeout(std::time::Duration::from_secs(4))
                .operation_timeout(std::time::Duration::from_secs(10))
                .build(),
        )
        .load()
        .await)
}

#[cfg(feature = "aws")]
/// The PEM file's bytes, once checked: the SDK panics on a certificate it cannot parse.
fn read_certificates(path: &str) -> Result<Vec<u8>, InitError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let invalid = |reason: String| InitError::CertFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate file: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid("holds no certificate".into()));
    }
    Ok(pem)
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;
    use rustls_pki_types::{CertificateDer, pem::PemObject};

    #[test]
    fn the_shipped_roots_are_the_five_amazon_trust_services_certificates() {
        let roots: Vec<_> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(roots.len(), 5);
    }

    #[test]
    fn a_bad_certificate_file_is_an_init_error_not_a_panic() {
        let dir = std::env::temp_dir();
        let empty = dir.join(format!("no-certs-{}.pem", std::process::id()));
        std::fs::write(&empty, "nothing here\n").unwrap();
        let err = read_certificates(empty.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().ends_with("holds no certificate"), "{err}");
        let err = read_certificates("/nonexistent/ca.pem").unwrap_err();
        assert!(
            err.to_string().starts_with("SSL_CERT_FILE /nonexistent/ca.pem: "),
            "{err}"
        );
        assert!(read_certificates("certs/amazon-trust-services.pem").is_ok());
    }
}
