//! `pipectl deploy STAGE APPLICATION TAG|DIGEST`: an image already in ECR, deployed to one
//! stage. Plainly, through the stage's normal path: deploy-on-push is handed the push ECR would
//! have sent (for that stage only), so the staging check, the approval, the timer and the
//! deploy window all apply. With `--emergency --reason`, a break-glass deploy: the order is
//! signed with the caller's AWS credentials and sent to the stack's break-glass function URL,
//! which obeys only the stack's `EmergencyPrincipals`.

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_ecr::types::ImageIdentifier;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use shared::domain::deployment::PushedImage;
use shared::domain::names::{ImageDigest, ImageTag};
use shared::domain::pipeline::{Application, Stage};

/// The image as ECR knows it.
pub struct EcrImage {
    /// The account whose registry holds it.
    pub registry_id: String,
    pub tag: String,
    pub digest: String,
    pub pushed_at: DateTime<Utc>,
}

/// Finds `wanted` (a tag, or a `sha256:` digest) in the application's repository. A digest
/// keeps the first of its tags (a deploy record names one); an untagged image is refused.
pub async fn find_image(
    aws: &aws_config::SdkConfig,
    application: &Application,
    wanted: &str,
) -> Result<EcrImage, String> {
    let id = if wanted.starts_with("sha256:") {
        ImageIdentifier::builder().image_digest(wanted).build()
    } else {
        ImageIdentifier::builder().image_tag(wanted).build()
    };
    let repository = application.repository.as_str();
    let found = aws_sdk_ecr::Client::new(aws)
        .describe_images()
        .repository_name(repository)
        .image_ids(id)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(err) if err.is_image_not_found_exception() => {
                format!("{wanted} is not in ECR repository {repository}")
            }
            Some(err) if err.is_repository_not_found_exception() => format!("ECR has no repository {repository}"),
            _ => shared::adapters::describe_sdk_error("DescribeImages", &e),
        })?;
    let image = found
        .image_details()
        .first()
        .ok_or_else(|| format!("{wanted} is not in ECR repository {repository}"))?;
    let digest = image.image_digest().unwrap_or_default().to_owned();
    let tag = if wanted.starts_with("sha256:") {
        image
            .image_tags()
            .first()
            .cloned()
            .ok_or_else(|| format!("{wanted} has no tag in {repository}: tag it, then deploy the tag"))?
    } else {
        wanted.to_owned()
    };
    let pushed_at = image
        .image_pushed_at()
        .and_then(|at| DateTime::from_timestamp(at.secs(), at.subsec_nanos()))
        .unwrap_or_else(Utc::now);
    let registry_id = image.registry_id().unwrap_or_default().to_owned();
    Ok(EcrImage {
        registry_id,
        tag,
        digest,
        pushed_at,
    })
}

/// The push deploy-on-push is handed for `stage` alone: the image pushed anew now, as
/// `pipectl redeploy` does, so the stage decides it as the newest push.
pub fn operator_push(
    stage: &Stage,
    application: &Application,
    image: &EcrImage,
    region: &str,
) -> Result<serde_json::Value, String> {
    let tag = ImageTag::parse(image.tag.clone()).map_err(|e| e.to_string())?;
    if !stage.tags.matches(&tag) {
        return Err(format!(
            "stage {} deploys tags matching `{}`, not {tag}; a break-glass deploy (--emergency) skips that rule",
            stage.name, stage.tags
        ));
    }
    let digest = ImageDigest::parse(image.digest.clone()).map_err(|e| e.to_string())?;
    let pushed = PushedImage {
        uri: format!(
            "{}.dkr.ecr.{region}.amazonaws.com/{}@{digest}",
            image.registry_id, application.repository
        ),
        repository: application.repository.clone(),
        tag,
        digest,
        pushed_at: Utc::now(),
    };
    let mut event = shared::events::push_of(&pushed, Utc::now()).ok_or("the registry is not an ECR registry")?;
    event["detail"]["operator-stage"] = stage.name.as_str().into();
    Ok(event)
}

/// A break-glass order, ready to sign.
pub struct Order<'a> {
    pub stage: &'a Stage,
    pub application: &'a Application,
    pub image: &'a EcrImage,
    pub reason: &'a str,
    pub snapshot: bool,
}

impl Order<'_> {
    /// The order's body. Its key is derived from what it orders, so running the same command
    /// again (after a timeout, say) is the same order and deploys nothing twice; a new reason
    /// makes a new order.
    pub fn body(&self) -> serde_json::Value {
        let key_source = format!(
            "{}|{}|{}|{}|{}",
            self.stage.name,
            self.application.name,
            self.image.digest,
            self.reason.trim(),
            self.snapshot
        );
        let key: String = Sha256::digest(key_source.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        serde_json::json!({
            "stage": self.stage.name.as_str(),
            "application": self.application.name.as_str(),
            "tag": self.image.tag,
            "digest": self.image.digest,
            "pushed_at": self.image.pushed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "reason": self.reason.trim(),
            "snapshot": self.snapshot,
            "key": key,
        })
    }
}

/// POSTs `body` to the function URL `url`, signed (SigV4, service `lambda`) with the caller's
/// credentials; the answer's status and JSON body.
pub async fn send_signed(
    aws: &aws_config::SdkConfig,
    url: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let credentials = aws
        .credentials_provider()
        .ok_or("no AWS credentials")?
        .provide_credentials()
        .await
        .map_err(|e| format!("AWS credentials: {e}"))?;
    let region = aws.region().ok_or("no AWS region (set AWS_REGION)")?.to_string();
    let body = body.to_string();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json")
        .header("host", host_of(url)?)
        .body(body.clone())
        .map_err(|e| format!("{url}: {e}"))?;
    let identity = credentials.into();
    let settings = aws_sigv4::http_request::SigningSettings::default();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("lambda")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        "POST",
        url,
        headers.into_iter(),
        aws_sigv4::http_request::SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);

    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, Full::new(bytes::Bytes::from(body)));
    let response = client.request(request).await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    // Lambda's own refusals (IAM) answer {"Message": "Forbidden"}; the function's, {"error": …}.
    let answer = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::json!({ "error": String::from_utf8_lossy(&bytes) }));
    Ok((status, answer))
}

fn host_of(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
    Ok(match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The operator-readable lines of a break-glass answer, or its refusal.
pub fn report(status: u16, answer: &serde_json::Value) -> Result<Vec<String>, String> {
    if status != 200 {
        let why = answer["error"]
            .as_str()
            .or_else(|| answer["Message"].as_str())
            .or_else(|| answer["message"].as_str())
            .unwrap_or("no reason given");
        let hint = if status == 403 && answer.get("error").is_none() {
            " (IAM refused the call: your identity needs lambda:InvokeFunctionUrl on the break-glass function)"
        } else {
            ""
        };
        return Err(format!("break-glass refused ({status}): {why}{hint}"));
    }
    let mut lines = vec![format!(
        "EMERGENCY deploy of {} to {} by {}",
        answer["image"].as_str().unwrap_or("?"),
        answer["stage"].as_str().unwrap_or("?"),
        answer["by"].as_str().unwrap_or("?")
    )];
    for deployed in answer["deployments"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  {}: {} {}{}",
            deployed["service"].as_str().unwrap_or("?"),
            deployed["deployment_id"].as_str().unwrap_or("?"),
            deployed["status"].as_str().unwrap_or("?"),
            if deployed["started_now"].as_bool() == Some(false) {
                " (ordered before: nothing done again)"
            } else {
                ""
            }
        ));
    }
    let snapshots: Vec<&str> = answer["snapshots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect();
    lines.push(format!(
        "  pre-deploy snapshots: {}",
        if snapshots.is_empty() {
            "none".to_owned()
        } else {
            snapshots.join(", ")
        }
    ));
    Ok(lines)
}
