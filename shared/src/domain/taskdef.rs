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
