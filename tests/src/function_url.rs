//! A Lambda function URL in front of a built binary: each HTTP request becomes the payload
//! format 2.0 event a function URL sends (headers lowercased, a form body base64-encoded),
//! the binary answers under the Runtime API, and its response object becomes the HTTP answer.
//!
//! With `AuthType: AWS_IAM` (`start_with_iam`), a request without a SigV4 `Authorization`
//! header is refused as Lambda refuses it (403, `{"Message":"Forbidden"}`), and a signed one
//! reaches the function with `requestContext.authorizer.iam` filled as Lambda fills it: the
//! caller's identity is asked of moto's STS with the access key the request was signed with.
//! The signature itself is not verified (moto verifies none either).

use crate::function::Function;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

pub struct FunctionUrl {
    /// `http://127.0.0.1:<port>/`, as a function URL ends with `/`.
    pub url: String,
    function: Arc<Mutex<Function>>,
    server: tokio::task::JoinHandle<()>,
}

impl FunctionUrl {
    /// `AuthType: NONE`: anyone may call it.
    pub async fn start(function: Function) -> Self {
        Self::serve(function, None).await
    }

    /// `AuthType: AWS_IAM`: only signed requests, their caller resolved by moto's STS at
    /// `moto_endpoint`.
    pub async fn start_with_iam(function: Function, moto_endpoint: &str) -> Self {
        Self::serve(function, Some(Arc::from(moto_endpoint))).await
    }

    async fn serve(function: Function, iam: Option<Arc<str>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().unwrap();
        let function = Arc::new(Mutex::new(function));
        let serving = function.clone();
        let server = crate::serve(listener, move |req| forward(req, serving.clone(), address, iam.clone()));
        FunctionUrl {
            url: format!("http://{address}/"),
            function,
            server,
        }
    }

    pub async fn logs(&self) -> Vec<String> {
        self.function.lock().await.logs()
    }
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn forbidden() -> Response<Full<Bytes>> {
    Response::builder()
        .status(403)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", "AccessDeniedException")
        .body(Full::new(Bytes::from_static(br#"{"Message":"Forbidden"}"#)))
        .unwrap()
}

/// The access key a SigV4 `Authorization` header was signed with
/// (`AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/lambda/aws4_request, …`).
fn signing_key(authorization: &str) -> Option<&str> {
    let credential = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")?
        .split(',')
        .next()?
        .trim();
    let scope = credential.strip_prefix("Credential=")?;
    let (key, rest) = scope.split_once('/')?;
    rest.ends_with("/lambda/aws4_request").then_some(key)
}

/// What Lambda puts in `requestContext.authorizer.iam`: the caller as STS knows the key.
async fn iam_authorizer(moto: &str, access_key: &str) -> Option<serde_json::Value> {
    let credentials =
        aws_sdk_sts::config::Credentials::new(access_key, "signature-not-verified", None, None, "harness");
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(crate::REGION))
        .endpoint_url(moto)
        .credentials_provider(credentials)
        .build();
    let caller = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .ok()?;
    Some(serde_json::json!({
        "iam": {
            "accessKey": access_key,
            "accountId": caller.account()?,
            "callerId": caller.user_id()?,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": caller.arn()?,
            "userId": caller.user_id()?,
        }
    }))
}

async fn forward(
    req: Request<Incoming>,
    function: Arc<Mutex<Function>>,
    address: SocketAddr,
    iam: Option<Arc<str>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let authorizer = match &iam {
        None => serde_json::Value::Null,
        Some(moto) => {
            let key = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(signing_key)
                .map(str::to_owned);
            match key {
                Some(key) => match iam_authorizer(moto, &key).await {
                    Some(authorizer) => authorizer,
                    None => return Ok(forbidden()),
                },
                None => return Ok(forbidden()),
            }
        }
    };
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let value = value.to_str().unwrap_or_default();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| *v = format!("{},{value}", v.as_str().unwrap_or_default()).into())
            .or_insert(value.into());
    }
    let now = chrono::Utc::now();
    let path = parts.uri.path().to_owned();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    // Function URLs hand JSON and text bodies over as they are, and base64-encode the rest
    // (form posts included).
    let content_type = headers.get("content-type").and_then(|v| v.as_str()).unwrap_or_default();
    let body_text = (content_type.starts_with("application/json") || content_type.starts_with("text/"))
        .then(|| String::from_utf8(body.to_vec()).ok())
        .flatten();
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "approvalpageurlid",
            "domainName": format!("{address}"),
            "domainPrefix": "approvalpageurlid",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": format!("{:032x}", now.timestamp_nanos_opt().unwrap_or_default()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": match (&body_text, body.is_empty()) {
            (_, true) => serde_json::Value::Null,
            (Some(text), false) => text.clone().into(),
            (None, false) => STANDARD.encode(&body).into(),
        },
        "isBase64Encoded": body_text.is_none() && !body.is_empty(),
    });
    if !authorizer.is_null() {
        event["requestContext"]["authorizer"] = authorizer;
    }
    let outcome = function.lock().await.invoke(event.to_string()).await;
    let answer = outcome.response();
    let status = answer["statusCode"].as_u64().unwrap_or(502) as u16;
    let text = answer["body"].as_str().unwrap_or_default();
    let bytes = if answer["isBase64Encoded"].as_bool().unwrap_or(false) {
        STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::builder().status(status);
    if let Some(headers) = answer["headers"].as_object() {
        for (name, value) in headers {
            response = response.header(name, value.as_str().unwrap_or_default());
        }
    }
    Ok(response.body(Full::new(Bytes::from(bytes))).unwrap())
}

/// An HTTP answer, as a browser would get it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// One HTTP/1 request to `url`; a `form` is sent as `application/x-www-form-urlencoded`.
pub async fn request(method: &str, url: &str, user_agent: &str, form: Option<&[(&str, &str)]>) -> Answer {
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header("user-agent", user_agent);
    let body = match form {
        Some(fields) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            fields
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        }
        None => String::new(),
    };
    let response = client
        .request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("the page answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
