//! Who signed a caller proof (`domain::emergency::CallerProof`): STS's answer to the signed
//! request, never what the event claims.

use crate::domain::emergency::CallerProof;
use std::future::Future;

#[derive(Debug, thiserror::Error)]
#[error("STS: {0}")]
pub struct ProofError(pub String);

pub trait Callers: Send + Sync {
    /// The ARN of whoever signed `proof` for the order whose hash is `order_hash`; `None` when
    /// STS refuses the signature (bound to another order, another host, expired, unknown key).
    fn signer(
        &self,
        proof: &CallerProof,
        order_hash: &str,
    ) -> impl Future<Output = Result<Option<String>, ProofError>> + Send;
}
