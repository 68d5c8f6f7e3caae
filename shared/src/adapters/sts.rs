//! The caller proof sent to STS: a `GetCallerIdentity` request carrying the operator's
//! signature in place of the function's own. The SDK builds and sends the request to the
//! function's STS endpoint; an interceptor swaps in the proof's signature headers and the
//! order's hash header after the SDK signed it, so STS checks the operator's signature over
//! exactly what the operator signed (the host is this endpoint's, the body fixed).

use crate::domain::emergency::{CallerProof, ORDER_HEADER, PROOF_BODY, PROOF_CONTENT_TYPE};
use crate::ports::{Callers, ProofError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Clone)]
pub struct StsCallers {
    client: aws_sdk_sts::Client,
}

impl StsCallers {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_sts::Client::new(config),
        }
    }
}

/// The operator's signature headers, put on the request in place of the function's.
#[derive(Debug)]
struct SignedByCaller {
    headers: Vec<(&'static str, String)>,
}

impl Intercept for SignedByCaller {
    fn name(&self) -> &'static str {
        "SignedByCaller"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let headers = request.headers_mut();
        for name in [
            "authorization",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-content-sha256",
        ] {
            headers.remove(name);
        }
        for (name, value) in &self.headers {
            headers.try_insert(*name, value.clone())?;
        }
        headers.insert("content-type", PROOF_CONTENT_TYPE);
        headers.insert("content-length", PROOF_BODY.len().to_string());
        *request.body_mut() = SdkBody::from(PROOF_BODY);
        Ok(())
    }
}

impl Callers for StsCallers {
    async fn signer(&self, proof: &CallerProof, order_hash: &str) -> Result<Option<String>, ProofError> {
        let Some(authorization) = proof.authorization() else {
            tracing::warn!("a caller proof that is not a SigV4 signature's parts");
            return Ok(None);
        };
        let mut headers = vec![
            ("authorization", authorization),
            ("x-amz-date", proof.amz_date.clone()),
            (ORDER_HEADER, order_hash.to_owned()),
        ];
        if let Some(token) = &proof.security_token {
            headers.push(("x-amz-security-token", token.clone()));
        }
        let answer = self
            .client
            .get_caller_identity()
            .customize()
            .interceptor(SignedByCaller { headers })
            .send()
            .await;
        match answer {
            Ok(identity) => Ok(identity.arn().map(str::to_owned)),
            // STS answered: a 4xx is a signature it does not take (another order, host or
            // region, expired, an unknown key, a region the signer's account has not
            // enabled), which no retry changes; throttling and 5xx are worth another try.
            Err(aws_sdk_sts::error::SdkError::ServiceError(err)) => {
                use aws_sdk_sts::error::ProvideErrorMetadata;
                let status = err.raw().status().as_u16();
                let code = err.err().code().unwrap_or("no code").to_owned();
                if status >= 500 || code.contains("Throttl") {
                    return Err(ProofError(format!("GetCallerIdentity: {code} ({status})")));
                }
                tracing::warn!(%code, status, message = err.err().message().unwrap_or_default(), "STS refused the caller proof");
                Ok(None)
            }
            Err(err) => Err(ProofError(super::describe_sdk_error("GetCallerIdentity", &err))),
        }
    }
}
