//! The one change a deploy makes to a task definition: the named container's image, pinned
//! by digest. Everything else is copied by the ECS adapter as it was.

use super::names::ContainerName;
use aws_sdk_ecs::types::ContainerDefinition;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("task definition {task_definition} has no container `{container}` (it has: {present})")]
pub struct ContainerMissing {
    pub task_definition: String,
    pub container: ContainerName,
    pub present: String,
}

/// The container definitions with only `container`'s image replaced by `image`.
pub fn pin_container_image(
    task_definition: &str,
    containers: &[ContainerDefinition],
    container: &ContainerName,
    image: &str,
) -> Result<Vec<ContainerDefinition>, ContainerMissing> {
    if !containers.iter().any(|c| c.name() == Some(container.as_str())) {
        let present = containers
            .iter()
            .filter_map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ContainerMissing {
            task_definition: task_definition.to_owned(),
            container: container.clone(),
            present,
        });
    }
    Ok(containers
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.name() == Some(container.as_str()) {
                c.image = Some(image.to_owned());
            }
            c
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::KeyValuePair;

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .environment(KeyValuePair::builder().name("MODE").value(name).build())
            .build()
    }

    #[test]
    fn replaces_only_the_named_container_image() {
        let before = [container("api", "repo:old"), container("sidecar", "envoy:1")];
        let after =
            pin_container_image("td:1", &before, &ContainerName::parse("api").unwrap(), "repo@sha256:x").unwrap();
        assert_eq!(after[0].image(), Some("repo@sha256:x"));
        assert_eq!(after[0].environment(), before[0].environment());
        assert_eq!(after[1], before[1]);
    }

    #[test]
    fn a_missing_container_is_an_error_naming_what_is_there() {
        let before = [container("web", "repo:old")];
        let err = pin_container_image("td:1", &before, &ContainerName::parse("api").unwrap(), "x").unwrap_err();
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
        .filter(|tag| !tag["key"].as_str().is_some_and(is_reserved_tag_key))
        .cloned()
        .collect();
    if !tags.is_empty() {
        body.insert("tags".into(), tags.into());
    }
    Ok(body.into())
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
