//! The one change a deploy makes to a task definition: the named container's image, pinned
//! by digest. Everything else is copied by the ECS adapter as it was.

use super::names::ContainerName;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("task definition {task_definition} has no container `{container}` (it has: {present})")]
pub struct ContainerMissing {
    pub task_definition: String,
    pub container: ContainerName,
    pub present: String,
}

/// The tag every revision a deploy registers carries: the deployment's id. A retry that
/// cannot know whether its registration went through (the answer was lost) finds the
/// revision by it instead of registering another. Never copied onto other revisions.
pub const DEPLOYMENT_TAG: &str = "ecs-deploy:deployment";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    ContainerMissing(#[from] ContainerMissing),
    #[error(transparent)]
    Unusable(#[from] UnusableDefinition),
}

/// RegisterTaskDefinition's JSON body for a new revision of `described` (DescribeTaskDefinition's
/// response with tags, for the revision `task_definition`) identical but for `container`'s
/// image, which becomes `image`, and tagged with the deployment that registers it.
pub fn pinned_registration_body(
    task_definition: &str,
    described: &str,
    container: &ContainerName,
    image: &str,
    deployment: &str,
) -> Result<serde_json::Value, PinError> {
    let mut body = registration_body_for(described, deployment)?;
    let containers = body["containerDefinitions"]
        .as_array_mut()
        .expect("registration_body keeps a non-empty containerDefinitions");
    match containers.iter_mut().find(|c| c["name"] == container.as_str()) {
        Some(pinned) => pinned["image"] = image.into(),
        None => {
            let present: Vec<&str> = containers.iter().filter_map(|c| c["name"].as_str()).collect();
            return Err(ContainerMissing {
                task_definition: task_definition.to_owned(),
                container: container.clone(),
                present: present.join(", "),
            }
            .into());
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn described(containers: serde_json::Value) -> String {
        json!({"taskDefinition": {"family": "api", "cpu": "256", "containerDefinitions": containers},
               "tags": [{"key": "team", "value": "analytics"}]})
        .to_string()
    }

    #[test]
    fn replaces_only_the_named_container_image() {
        let before = described(json!([
            {"name": "api", "image": "repo:old", "environment": [{"name": "MODE", "value": "api"}]},
            {"name": "sidecar", "image": "envoy:1"}
        ]));
        let api = ContainerName::parse("api").unwrap();
        assert_eq!(
            pinned_registration_body("td:1", &before, &api, "repo@sha256:x", "dep-1").unwrap(),
            json!({"family": "api", "cpu": "256", "containerDefinitions": [
                {"name": "api", "image": "repo@sha256:x", "environment": [{"name": "MODE", "value": "api"}]},
                {"name": "sidecar", "image": "envoy:1"}
            ], "tags": [{"key": "team", "value": "analytics"}, {"key": DEPLOYMENT_TAG, "value": "dep-1"}]})
        );
    }

    #[test]
    fn a_revision_is_known_by_the_deployment_that_registered_it_and_the_tag_is_never_copied() {
        let api = ContainerName::parse("api").unwrap();
        let body = pinned_registration_body("td:1", &described(json!([{"name": "api"}])), &api, "x", "dep-1").unwrap();
        let registered = json!({"taskDefinition": body, "tags": body["tags"]});
        assert!(registered_by(&registered, "dep-1"));
        assert!(!registered_by(&registered, "dep-2"));
        let copied = registration_body(&registered.to_string()).unwrap();
        assert_eq!(copied["tags"], json!([{"key": "team", "value": "analytics"}]));
    }

    #[test]
    fn a_missing_container_is_an_error_naming_what_is_there() {
        let before = described(json!([{"name": "web", "image": "repo:old"}]));
        let err =
            pinned_registration_body("td:1", &before, &ContainerName::parse("api").unwrap(), "x", "dep-1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "task definition td:1 has no container `api` (it has: web)"
        );
    }
}

/// The members of a described task definition that RegisterTaskDefinition accepts; the rest
/// (ARN, revision, status, registeredAt, compatibilities, …) are ECS's to set.
const REGISTERABLE: [&str; 16] = [
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// Tag keys starting `aws:` (any case; CloudFormation's, say) are AWS's to set:
/// RegisterTaskDefinition refuses them, so they are never copied.
pub fn is_reserved_tag_key(key: &str) -> bool {
    key.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored task definition is unusable: {0}")]
pub struct UnusableDefinition(pub &'static str);

/// RegisterTaskDefinition's JSON body for a definition stored as DescribeTaskDefinition
/// returned it (`{"taskDefinition": {…}, "tags": […]}`): the same revision, registered anew.
pub fn registration_body(stored: &str) -> Result<serde_json::Value, UnusableDefinition> {
    let stored: serde_json::Value = serde_json::from_str(stored).map_err(|_| UnusableDefinition("not JSON"))?;
    let definition = stored["taskDefinition"]
        .as_object()
        .ok_or(UnusableDefinition("no `taskDefinition` object"))?;
    if !definition.get("family").is_some_and(|f| f.is_string()) {
        return Err(UnusableDefinition("no `family`"));
    }
    let containers = definition.get("containerDefinitions").and_then(|c| c.as_array());
    if containers.is_none_or(|c| c.is_empty()) {
        return Err(UnusableDefinition("no `containerDefinitions`"));
    }
    let mut body: serde_json::Map<String, serde_json::Value> = definition
        .iter()
        .filter(|(key, value)| REGISTERABLE.contains(&key.as_str()) && !value.is_null())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let tags: Vec<serde_json::Value> = stored["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tag| {
            !tag["key"]
                .as_str()
                .is_some_and(|key| is_reserved_tag_key(key) || key == DEPLOYMENT_TAG)
        })
        .cloned()
        .collect();
    if !tags.is_empty() {
        body.insert("tags".into(), tags.into());
    }
    Ok(body.into())
}

/// Whether a described revision (DescribeTaskDefinition's response with tags) was registered
/// by `deployment`.
pub fn registered_by(described: &serde_json::Value, deployment: &str) -> bool {
    described["tags"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["key"] == DEPLOYMENT_TAG && t["value"] == deployment)
    })
}

/// `registration_body`, tagged with the deployment that registers it.
pub fn registration_body_for(stored: &str, deployment: &str) -> Result<serde_json::Value, UnusableDefinition> {
    let mut body = registration_body(stored)?;
    let tag = serde_json::json!({"key": DEPLOYMENT_TAG, "value": deployment});
    match body["tags"].as_array_mut() {
        Some(tags) => tags.push(tag),
        None => body["tags"] = serde_json::json!([tag]),
    }
    Ok(body)
}

/// The image `container` runs in a stored definition (see `registration_body`).
pub fn container_image(stored: &str, container: &ContainerName) -> Option<String> {
    let stored: serde_json::Value = serde_json::from_str(stored).ok()?;
    stored["taskDefinition"]["containerDefinitions"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container.as_str())?["image"]
        .as_str()
        .map(str::to_owned)
}

/// `family:revision`, the short name people know a revision by, from its ARN.
pub fn revision_name(task_definition: &str) -> &str {
    task_definition.rsplit('/').next().unwrap_or(task_definition)
}

#[cfg(test)]
mod registration_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_containers_image_and_a_revisions_short_name() {
        let stored = json!({"taskDefinition": {"containerDefinitions": [
            {"name": "sidecar", "image": "envoy:1"}, {"name": "api", "image": "repo@sha256:abc"}]}});
        let api = ContainerName::parse("api").unwrap();
        assert_eq!(
            container_image(&stored.to_string(), &api).as_deref(),
            Some("repo@sha256:abc")
        );
        assert_eq!(container_image("{}", &api), None);
        assert_eq!(
            revision_name("arn:aws:ecs:us-east-1:123456789012:task-definition/api:7"),
            "api:7"
        );
    }

    #[test]
    fn keeps_what_register_accepts_and_the_tags() {
        let stored = json!({
            "taskDefinition": {
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7",
                "family": "api",
                "revision": 7,
                "status": "INACTIVE",
                "registeredAt": 1700000000.0,
                "compatibilities": ["EC2", "FARGATE"],
                "requiresAttributes": [{"name": "ecs.capability.execution-role-awslogs"}],
                "cpu": "512",
                "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
                "containerDefinitions": [{"name": "api", "image": "repo@sha256:abc"}],
                "pidMode": null
            },
            "tags": [{"key": "team", "value": "analytics"}, {"key": "aws:cloudformation:stack-name", "value": "app"}]
        });
        assert_eq!(
            registration_body(&stored.to_string()).unwrap(),
            json!({
                "family": "api",
                "cpu": "512",
                "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
                "containerDefinitions": [{"name": "api", "image": "repo@sha256:abc"}],
                "tags": [{"key": "team", "value": "analytics"}]
            })
        );
    }

    #[test]
    fn refuses_what_cannot_be_registered() {
        assert_eq!(registration_body("nope"), Err(UnusableDefinition("not JSON")));
        assert_eq!(
            registration_body("{}"),
            Err(UnusableDefinition("no `taskDefinition` object"))
        );
        assert_eq!(
            registration_body(r#"{"taskDefinition": {"family": "api", "containerDefinitions": []}}"#),
            Err(UnusableDefinition("no `containerDefinitions`"))
        );
    }
}
