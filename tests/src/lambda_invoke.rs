//! Lambda's Invoke API in front of the built function binaries. moto serves Lambda, but runs
//! a function's code in Docker, which this machine does not have: so `pipectl redrive` and
//! `redeploy` invoke through this endpoint (`AWS_ENDPOINT_URL_LAMBDA`), and every invocation
//! really runs the function's binary under the Runtime API before it is answered.

use crate::function::Function;
use crate::runtime_api::Outcome;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::Mutex as AsyncMutex;

/// One invocation: the function name as invoked, its invocation type, what the function did.
#[derive(Clone, Debug)]
pub struct Invoked {
    pub function: String,
    pub invocation_type: String,
    pub outcome: Outcome,
}

pub struct LambdaInvoke {
    pub endpoint: String,
    invoked: Arc<Mutex<Vec<Invoked>>>,
    server: tokio::task::JoinHandle<()>,
}

type Functions = Arc<HashMap<String, AsyncMutex<Function>>>;

impl LambdaInvoke {
    /// Serves the functions by name (`deploy-on-push`, …); an invoked name (`<stack>-<name>`
    /// or a function ARN) reaches the function whose name it ends with.
    pub async fn start(functions: HashMap<String, Function>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let functions: Functions = Arc::new(functions.into_iter().map(|(k, f)| (k, AsyncMutex::new(f))).collect());
        let invoked = Arc::new(Mutex::new(Vec::new()));
        let log = invoked.clone();
        let server = crate::serve(listener, move |req| invoke(req, functions.clone(), log.clone()));
        LambdaInvoke {
            endpoint,
            invoked,
            server,
        }
    }

    pub fn invoked(&self) -> Vec<Invoked> {
        self.invoked.lock().unwrap().clone()
    }
}

impl Drop for LambdaInvoke {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

async fn invoke(
    req: Request<Incoming>,
    functions: Functions,
    invoked: Arc<Mutex<Vec<Invoked>>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    // POST /2015-03-31/functions/{FunctionName}/invocations
    let name = req
        .uri()
        .path()
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(|name| name.replace("%3A", ":").replace("%24", "$"))
        .unwrap_or_default();
    let invocation_type = req
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let payload = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(function) = functions
        .iter()
        .find(|(short, _)| name.ends_with(short.as_str()))
        .map(|(_, f)| f)
    else {
        let body = format!(r#"{{"Type":"User","message":"Function not found: {name}"}}"#);
        let mut response = reply(StatusCode::NOT_FOUND, &body);
        response
            .headers_mut()
            .insert("x-amzn-errortype", "ResourceNotFoundException".parse().unwrap());
        return Ok(response);
    };
    let outcome = function.lock().await.invoke(payload.to_vec()).await;
    let answer = match (&outcome, invocation_type.as_str()) {
        // An asynchronous invocation is accepted with 202 and no payload.
        (_, "Event") => reply(StatusCode::ACCEPTED, ""),
        (Outcome::Response(value), _) => reply(StatusCode::OK, &value.to_string()),
        // A function's error is a 200 naming it in a header, as Lambda answers.
        (Outcome::Error { error_type, message }, _) => {
            let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
            let mut response = reply(StatusCode::OK, &body.to_string());
            response
                .headers_mut()
                .insert("x-amz-function-error", "Unhandled".parse().unwrap());
            response
        }
    };
    invoked.lock().unwrap().push(Invoked {
        function: name,
        invocation_type,
        outcome,
    });
    Ok(answer)
}
