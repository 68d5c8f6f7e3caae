//! IAM's fine-grained access control for DynamoDB, at the HTTP edge in front of moto: moto
//! checks no condition keys, so a role's `dynamodb:LeadingKeys`, `dynamodb:Attributes` and
//! `dynamodb:ReturnValues` conditions are enforced here, as IAM evaluates them, from the role
//! as template.yaml writes it. A request the role does not allow gets IAM's answer
//! (`AccessDeniedException`) and never reaches the emulator. Tests drive the approval page
//! through it, and act as an attacker holding the page's credentials.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// One `Allow` statement of a role on the table: its actions and DynamoDB conditions.
#[derive(Clone, Debug, Default)]
pub struct Statement {
    pub sid: String,
    pub actions: Vec<String>,
    /// `ForAllValues:StringLike` patterns (`*` at the end) the partition key must match.
    pub leading_keys: Option<Vec<String>>,
    /// `ForAllValues:StringEquals`: every attribute the request names must be one of these.
    pub attributes: Option<Vec<String>>,
    /// The operator the `dynamodb:Attributes` condition is written under (only
    /// `ForAllValues:StringEquals` confines a request to the list).
    pub attributes_operator: String,
    /// `StringEqualsIfExists`: the `ReturnValues` a request may ask for.
    pub return_values: Option<Vec<String>>,
}

/// A role's DynamoDB statements, read off template.yaml (the statements of `role` whose
/// actions name `dynamodb:`).
pub fn dynamodb_statements(template: &str, role: &str) -> Vec<Statement> {
    let start = format!("  {role}:");
    let mut lines = template.lines().skip_while(|line| *line != start);
    assert!(lines.next().is_some(), "no resource {role} in template.yaml");
    let list = |text: &str| -> Vec<String> {
        text.trim()
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|item| item.trim().trim_matches('"').to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    };
    let mut statements: Vec<Statement> = Vec::new();
    let mut operator = String::new();
    for line in lines.take_while(|line| !(line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':'))) {
        let line = line.trim();
        if let Some(sid) = line.strip_prefix("- Sid: ") {
            statements.push(Statement {
                sid: sid.to_owned(),
                ..Statement::default()
            });
            continue;
        }
        let Some(statement) = statements.last_mut() else {
            continue;
        };
        if let Some(written) = line
            .strip_suffix(':')
            .filter(|l| l.contains("Values:") || l.starts_with("String"))
        {
            operator = written.to_owned();
        }
        if let Some(actions) = line.strip_prefix("Action: ") {
            statement.actions = list(actions);
        } else if let Some(keys) = line.strip_prefix("dynamodb:LeadingKeys: ") {
            statement.leading_keys = Some(list(keys));
        } else if let Some(attributes) = line.strip_prefix("dynamodb:Attributes: ") {
            statement.attributes = Some(list(attributes));
            statement.attributes_operator = operator.clone();
        } else if let Some(values) = line.strip_prefix("dynamodb:ReturnValues: ") {
            statement.return_values = Some(list(values));
        }
    }
    statements.retain(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")));
    statements
}

/// Why IAM refuses DynamoDB call `operation` with JSON `body`, or `None` if one statement
/// allows it.
pub fn refusal(statements: &[Statement], operation: &str, body: &Value) -> Option<String> {
    let action = format!("dynamodb:{operation}");
    let partition_keys = partition_keys(body);
    let attributes = attributes_named(body);
    let return_values = body.get("ReturnValues").and_then(Value::as_str);
    let allowed = statements.iter().any(|s| {
        s.actions.contains(&action)
            && s.leading_keys.as_ref().is_none_or(|patterns| {
                partition_keys
                    .iter()
                    .all(|key| patterns.iter().any(|p| matches_like(p, key)))
            })
            && s.attributes
                .as_ref()
                .is_none_or(|allowed| attributes.iter().all(|a| allowed.contains(a)))
            && s.return_values
                .as_ref()
                .is_none_or(|allowed| return_values.is_none_or(|v| allowed.iter().any(|a| a == v)))
    });
    (!allowed).then(|| {
        format!("not authorized to perform {action} on keys {partition_keys:?} naming attributes {attributes:?}")
    })
}

fn matches_like(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// The partition key values a request reaches (`Key`, or an item's `pk`).
fn partition_keys(body: &Value) -> Vec<String> {
    ["Key", "Item"]
        .iter()
        .filter_map(|field| body.get(*field)?.get("pk")?.get("S")?.as_str())
        .map(str::to_owned)
        .collect()
}

/// The top-level attribute names a request names, as `dynamodb:Attributes` sees them: the key
/// or item's attributes, and every name in its expressions (aliases resolved).
fn attributes_named(body: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for field in ["Key", "Item", "AttributeUpdates"] {
        if let Some(map) = body.get(field).and_then(Value::as_object) {
            names.extend(map.keys().cloned());
        }
    }
    let aliases = body.get("ExpressionAttributeNames").and_then(Value::as_object);
    for field in [
        "UpdateExpression",
        "ConditionExpression",
        "ProjectionExpression",
        "KeyConditionExpression",
        "FilterExpression",
    ] {
        let Some(expression) = body.get(field).and_then(Value::as_str) else {
            continue;
        };
        for word in expression.split(|c: char| !(c.is_ascii_alphanumeric() || "_#:.[]".contains(c))) {
            let top = word.split(['.', '[']).next().unwrap_or_default();
            if top.is_empty() || top.starts_with(':') || is_keyword(top) {
                continue;
            }
            let name = match top.strip_prefix('#') {
                Some(_) => aliases
                    .and_then(|a| a.get(top))
                    .and_then(Value::as_str)
                    .unwrap_or(top)
                    .to_owned(),
                None => top.to_owned(),
            };
            names.insert(name);
        }
    }
    // A GetItem without a projection names none: ForAllValues lets an empty set through.
    names
}

fn is_keyword(word: &str) -> bool {
    const WORDS: [&str; 17] = [
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
    ];
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) || word.chars().all(|c| c.is_ascii_digit())
}

/// The edge: forwards what the role allows to moto, refuses the rest as IAM does. Calls to
/// other services than DynamoDB are refused too: the role has none.
pub struct IamEdge {
    pub endpoint: String,
    server: tokio::task::JoinHandle<()>,
}

impl IamEdge {
    pub async fn start(upstream: &str, statements: Vec<Statement>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind IAM edge");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let statements = Arc::new(statements);
        let server = crate::serve(listener, move |req| {
            forward(req, statements.clone(), client.clone(), upstream.clone())
        });
        IamEdge { endpoint, server }
    }
}

impl Drop for IamEdge {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(
    req: Request<Incoming>,
    statements: Arc<Vec<Statement>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let refused = match target.strip_prefix("DynamoDB_20120810.") {
        Some(operation) => {
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            refusal(&statements, operation, &json)
        }
        None => Some(format!("the role allows no call {target:?} outside DynamoDB")),
    };
    if let Some(why) = refused {
        let body = serde_json::json!({
            "__type": "com.amazon.coral.service#AccessDeniedException",
            "message": format!("User: arn:aws:sts::123456789012:assumed-role/page/edge is {why}"),
        });
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0".parse().unwrap());
        return Ok(response);
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parts.uri = format!("{upstream}{path}").parse().expect("upstream URI");
    Ok(crate::relay(&client, Request::from_parts(parts, Full::new(body))).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_role() -> Vec<Statement> {
        let template = std::fs::read_to_string(crate::repo_root().join("template.yaml")).unwrap();
        dynamodb_statements(&template, "ApprovalPageRole")
    }

    #[test]
    fn the_page_role_may_record_a_decision_and_nothing_else() {
        let role = page_role();
        for statement in role.iter().filter(|s| s.attributes.is_some()) {
            assert_eq!(
                statement.attributes_operator, "ForAllValues:StringEquals",
                "{statement:?}"
            );
        }
        let decision = serde_json::json!({
            "Key": {"pk": {"S": "APR#apr-1"}, "sk": {"S": "APR"}},
            "UpdateExpression": "SET #ballots = :ballots, #status = :status REMOVE #cancelled",
            "ConditionExpression": "#version = :read",
            "ExpressionAttributeNames": {"#ballots": "ballots", "#status": "status", "#cancelled": "cancelled", "#version": "version"},
        });
        assert_eq!(refusal(&role, "UpdateItem", &decision), None);
        let get = serde_json::json!({"Key": {"pk": {"S": "APR#apr-1"}, "sk": {"S": "APR"}}});
        assert_eq!(refusal(&role, "GetItem", &get), None);
        let mut forged = decision.clone();
        forged["UpdateExpression"] = "SET svc_pk = :a, #status = :status".into();
        assert!(refusal(&role, "UpdateItem", &forged).is_some());
        let mut elsewhere = decision.clone();
        elsewhere["Key"]["pk"]["S"] = "DEP#dep-1".into();
        assert!(refusal(&role, "UpdateItem", &elsewhere).is_some());
        let mut read_all = decision.clone();
        read_all["ReturnValues"] = "ALL_OLD".into();
        assert!(refusal(&role, "UpdateItem", &read_all).is_some());
        let put = serde_json::json!({"Item": {"pk": {"S": "APR#apr-1"}, "sk": {"S": "APR"}}});
        assert!(refusal(&role, "PutItem", &put).is_some(), "no PutItem at all");
        assert!(refusal(&role, "DeleteItem", &get).is_some());
    }
}
