//! What every function's `main` does before it serves events: logs, config, clients.

use crate::domain::pipeline::{Pipeline, PipelineError};

/// The shipped pipeline file, built into the binary so a deploy is one artifact.
pub const SHIPPED_PIPELINE: &str = include_str!("../../pipeline.toml");

#[derive(thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("reading pipeline file {path}: {error}")]
    PipelineFile { path: String, error: std::io::Error },
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
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

/// The shipped pipeline, or the file `PIPELINE_FILE` names (tests, local runs).
pub fn load_pipeline() -> Result<Pipeline, InitError> {
    match std::env::var("PIPELINE_FILE") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).map_err(|error| InitError::PipelineFile { path, error })?;
            Ok(Pipeline::parse(&text)?)
        }
        Err(_) => Ok(Pipeline::parse(SHIPPED_PIPELINE)?),
    }
}

pub fn env(name: &'static str) -> Result<String, InitError> {
    std::env::var(name).map_err(|_| InitError::MissingEnv(name))
}

/// Region, credentials and `AWS_ENDPOINT_URL` from the environment, as on Lambda.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A failed AWS call in one line: `Operation: Code: message`, or the whole error chain when
/// the call never got an answer (timeout, connection refused).
pub fn describe_sdk_error<E, R>(operation: &str, err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{operation}: {}: {}",
            service.code().unwrap_or("UnknownError"),
            service.message().unwrap_or("no message")
        ),
        None => format!(
            "{operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(err)
        ),
    }
}
