//! The approval page behind a Lambda function URL (payload format 2.0, as API Gateway HTTP
//! APIs send it): the request in, the page out with its security headers.

use crate::domain::approval_page::{HEADERS, Page};
use crate::handlers::approval_page::{ApprovalPage, Method, PageRequest};
use crate::ports::Approvals;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// A form bigger than this is not from the page (a comment is at most 1000 characters).
const MAX_FORM_BYTES: usize = 16 * 1024;

pub async fn serve<S: Approvals>(
    page: &ApprovalPage<S>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let parsed = page_request(&request);
    let head = parsed.method == Method::Head;
    let rendered = page.respond(&parsed, chrono::Utc::now()).await;
    Ok(response(rendered, head))
}

fn page_request(request: &Request) -> PageRequest {
    let method = match request.method().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    // Function URLs hand form bodies over base64-encoded; lambda_http decodes them to bytes.
    let bytes: &[u8] = match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let form = if method == Method::Post && bytes.len() <= MAX_FORM_BYTES {
        form_urlencoded::parse(bytes).into_owned().collect()
    } else {
        Vec::new()
    };
    let source_ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    PageRequest {
        method,
        path: request.raw_http_path().to_owned(),
        form,
        source_ip,
        user_agent,
    }
}

fn response(page: Page, head: bool) -> Response<Body> {
    let mut builder = Response::builder().status(page.status);
    for (name, value) in HEADERS.iter() {
        builder = builder.header(*name, value.as_str());
    }
    let body = if head { Body::Empty } else { Body::Text(page.html) };
    builder.body(body).expect("static headers are valid")
}
