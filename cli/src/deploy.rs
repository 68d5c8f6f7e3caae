//! `pipectl deploy STAGE APPLICATION TAG|DIGEST`: an image already in ECR, deployed to one
//! stage. Plainly, through the stage's normal path: deploy-on-push is handed the push ECR would
//! have sent (for that stage only), so the staging check, the approval, the timer and the
//! deploy window all apply. With `--emergency --reason`, a break-glass deploy: the order
//! carries a proof of who sends it (an STS request signed with the caller's credentials and
//! bound to the order), and is sent, signed too, to the stack's break-glass function URL,
//! which obeys only the stack's `EmergencyPrincipals`.

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_ecr::types::ImageIdentifier;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use shared::domain::deployment::PushedImage;
use shared::domain::emergency::{
    CallerProof, ORDER_HEADER, PROOF_BODY, PROOF_CONTENT_TYPE, PROOF_SIGNED_HEADERS, PROOF_SIGNED_HEADERS_WITH_TOKEN,
    order_hash,
};
use shared::domain::names::{ImageDigest, ImageTag};
use shared::domain::pipeline::{Application, Stage};

/// The image as ECR knows it.
pub struct EcrImage {
    /// The account whose registry holds it.
    pub registry_id: String,
    pub tag: String,
    pub digest: String,
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
    let registry_id = image.registry_id().unwrap_or_default().to_owned();
    Ok(EcrImage {
        registry_id,
        tag,
        digest,
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
    /// The order's body, with the proof of who sends it. What it asks makes its hash, and so
    /// its key: running the same command again (after a timeout, say) is the same order and
    /// deploys nothing twice; a new reason makes a new order.
    pub async fn body(&self, aws: &aws_config::SdkConfig, region: &str) -> Result<serde_json::Value, String> {
        let reason = self.reason.trim();
        let hash = order_hash(
            self.stage.name.as_str(),
            self.application.name.as_str(),
            &self.image.tag,
            &self.image.digest,
            reason,
            self.snapshot,
        );
        let proof = caller_proof(aws, region, &hash).await?;
        Ok(serde_json::json!({
            "stage": self.stage.name.as_str(),
            "application": self.application.name.as_str(),
            "tag": self.image.tag,
            "digest": self.image.digest,
            "reason": reason,
            "snapshot": self.snapshot,
            "proof": proof,
        }))
    }
}

/// The region a function URL is served from (`<id>.lambda-url.<region>.on.aws`): where its
/// requests and the proof are signed for. Another URL (a local one) takes the CLI's region.
pub fn url_region(aws: &aws_config::SdkConfig, url: &str) -> Result<String, String> {
    let host = host_of(url)?;
    let mut labels = host.split('.');
    if let (Some(_), Some("lambda-url"), Some(region)) = (labels.next(), labels.next(), labels.next()) {
        return Ok(region.to_owned());
    }
    Ok(aws.region().ok_or("no AWS region (set AWS_REGION)")?.to_string())
}

/// The STS endpoint the function will send the proof to: the regional one (in the China
/// partition's domain for a `cn-` region), or the endpoint the SDK configuration names (an
/// emulator).
fn sts_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("https://sts.{region}.{domain}"))
}

/// Signs, with the caller's credentials, the STS `GetCallerIdentity` request the function will
/// send: `ORDER_HEADER` (the order's hash) among the signed headers, so the signature proves
/// who sent this order and no other.
async fn caller_proof(aws: &aws_config::SdkConfig, region: &str, hash: &str) -> Result<CallerProof, String> {
    let url = format!("{}/", sts_endpoint(region).trim_end_matches('/'));
    let host = host_of(&url)?;
    let headers = [
        ("host", host.as_str()),
        ("content-type", PROOF_CONTENT_TYPE),
        (ORDER_HEADER, hash),
    ];
    let signed = sign(aws, "sts", region, "POST", &url, &headers, PROOF_BODY.as_bytes()).await?;
    let header = |name: &str| signed.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let security_token = header("x-amz-security-token");
    let authorization = header("authorization").ok_or("the signature has no authorization")?;
    // The function rebuilds the header with exactly these signed headers: sign no others.
    let expected = match security_token {
        Some(_) => PROOF_SIGNED_HEADERS_WITH_TOKEN,
        None => PROOF_SIGNED_HEADERS,
    };
    let part = |name: &str| {
        authorization
            .split([' ', ','])
            .find_map(|p| p.strip_prefix(name))
            .map(str::to_owned)
            .ok_or_else(|| format!("the signature has no {name}"))
    };
    if part("SignedHeaders=")? != expected {
        return Err(format!("the proof signed other headers than {expected}"));
    }
    Ok(CallerProof {
        credential: part("Credential=")?,
        signature: part("Signature=")?,
        amz_date: header("x-amz-date").ok_or("the signature has no date")?,
        security_token,
    })
}

/// SigV4-signs a request with the caller's credentials: the headers to add.
async fn sign(
    aws: &aws_config::SdkConfig,
    service: &str,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let credentials = aws
        .credentials_provider()
        .ok_or("no AWS credentials")?
        .provide_credentials()
        .await
        .map_err(|e| format!("AWS credentials: {e}"))?;
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        aws_sigv4::http_request::SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// How long an order may take to be answered: the function's own timeout, and some.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// POSTs `body` to the function URL `url`, signed (SigV4, service `lambda`, the URL's region)
/// with the caller's credentials; the answer's status and JSON body.
pub async fn send_signed(
    aws: &aws_config::SdkConfig,
    url: &str,
    region: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let body = body.to_string();
    let host = host_of(url)?;
    let headers = [("host", host.as_str()), ("content-type", "application/json")];
    let signed = sign(aws, "lambda", region, "POST", url, &headers, body.as_bytes()).await?;
    let mut request = http::Request::builder().method("POST").uri(url);
    for (name, value) in headers
        .iter()
        .map(|(n, v)| (*n, *v))
        .chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = tokio::time::timeout(ANSWER_TIMEOUT, client.request(request))
        .await
        .map_err(|_| {
            format!(
                "{url}: no answer in {} s: the order may still be carried out; order again to see",
                ANSWER_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("{url}: {e}"))?;
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
            " (IAM refused the call: your identity needs lambda:InvokeFunctionUrl and lambda:InvokeFunction on the break-glass function)"
        } else {
            ""
        };
        let failures: Vec<String> = answer["failed"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                format!(
                    "\n  {}: {}",
                    f["service"].as_str().unwrap_or("?"),
                    f["error"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if answer["deployments"].as_array().is_none_or(Vec::is_empty) {
            return Err(format!(
                "break-glass refused ({status}): {why}{hint}{}",
                failures.concat()
            ));
        }
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
    for failed in answer["failed"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  {}: NOT deployed: {}",
            failed["service"].as_str().unwrap_or("?"),
            failed["error"].as_str().unwrap_or("?")
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
    if let Some(error) = answer["error"].as_str() {
        lines.push(format!("  {error}"));
    }
    match status {
        200 => Ok(lines),
        422 => {
            lines.push("failed midway (422): ECS refused the services above; fix that, then order again".into());
            Err(lines.join("\n"))
        }
        _ => {
            lines.push(format!(
                "failed midway ({status}): order again (the same command) to finish it"
            ));
            Err(lines.join("\n"))
        }
    }
}
