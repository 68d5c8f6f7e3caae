//! The pipeline in force, as the stack keeps it. Every function reads it; only the deployer
//! (`pipectl pipeline push|activate`) writes it.

use super::StoreError;
use std::future::Future;

/// A version of the pipeline file as the stack keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPipeline {
    /// 1 for the first file pushed, then one more for each.
    pub version: u32,
    pub text: String,
    /// The text's SHA-256, hex.
    pub hash: String,
}

impl StoredPipeline {
    /// How records name it.
    pub fn label(&self) -> String {
        format!("v{}", self.version)
    }
}

pub trait PipelineStore: Send + Sync {
    /// The version activated last; `None` before the first push.
    fn in_force(&self) -> impl Future<Output = Result<Option<StoredPipeline>, StoreError>> + Send;
}
