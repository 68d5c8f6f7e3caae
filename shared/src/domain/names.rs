//! Names that cannot be invalid: each is checked once, when parsed, against the rules AWS
//! applies to it, so the rest of the code never re-validates a string.

use std::fmt;

/// A value that failed one of the name rules below; says what it was meant to be and why not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {why}")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:path) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                match $check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(why) => Err(InvalidName { what: $what, value, why }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An ECR repository name, e.g. `social-analytics/backend`.
    RepositoryName, "repository name", check_repository
);
name_type!(
    /// An image digest, `sha256:` and 64 lowercase hex digits.
    ImageDigest, "image digest", check_digest
);
name_type!(
    /// An image tag as ECR accepts it.
    ImageTag, "image tag", check_tag
);
name_type!(
    /// A pipeline stage or application name: lowercase letter first, then letters, digits, hyphens.
    StageName, "stage name", check_slug
);
name_type!(
    /// An application's name in the pipeline file.
    AppName, "application name", check_slug
);
name_type!(
    /// An ECS cluster name.
    ClusterName, "cluster name", check_ecs_name
);
name_type!(
    /// An ECS service name.
    ServiceName, "service name", check_ecs_name
);
name_type!(
    /// A container name inside a task definition.
    ContainerName, "container name", check_ecs_name
);
name_type!(
    /// An RDS DB instance identifier.
    DbInstanceId, "DB instance identifier", check_db_instance
);
name_type!(
    /// A CloudWatch alarm name (metric, metric-math or composite).
    AlarmName, "alarm name", check_alarm
);
name_type!(
    /// An approver's e-mail address, as their SNS subscription and the filter policy on it
    /// name them. Kept as written; compared as written.
    Approver, "approver e-mail address", check_email
);
name_type!(
    /// A 12-digit AWS account id.
    AccountId, "account id", check_account
);
name_type!(
    /// An AWS region code, e.g. `eu-west-1`.
    Region, "region", check_region
);

fn check_repository(s: &str) -> Result<(), &'static str> {
    if !(2..=256).contains(&s.len()) {
        return Err("must be 2 to 256 characters");
    }
    for part in s.split('/') {
        let bytes = part.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return Err("empty path segment");
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return Err("each segment must start and end with a lowercase letter or digit");
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
        {
            return Err("only lowercase letters, digits, '.', '_', '-' and '/' are allowed");
        }
    }
    Ok(())
}

/// A plain `local@domain.tld` address: what SNS e-mail subscriptions accept, without the
/// corners (quoted local parts, comments) no approver list needs.
fn check_email(s: &str) -> Result<(), &'static str> {
    if s.len() > 254 {
        return Err("must be at most 254 characters");
    }
    if s.bytes()
        .any(|b| !b.is_ascii_graphic() || b"<>()[]\\,;:\"".contains(&b))
    {
        return Err("only printable ASCII without spaces, quotes or brackets is allowed");
    }
    let (local, domain) = s.split_once('@').ok_or("must contain `@`")?;
    if local.is_empty() || domain.contains('@') {
        return Err("must be `name@domain`");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err("the domain must be dot-separated labels, e.g. `example.com`");
    }
    Ok(())
}

fn check_digest(s: &str) -> Result<(), &'static str> {
    let hex = s.strip_prefix("sha256:").ok_or("must start with `sha256:`")?;
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err("must be `sha256:` followed by 64 lowercase hex digits")
    }
}

pub(crate) fn is_tag_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-".contains(&b)
}

fn check_tag(s: &str) -> Result<(), &'static str> {
    let bytes = s.as_bytes();
    match bytes.first() {
        None => Err("must not be empty"),
        Some(_) if bytes.len() > 128 => Err("must be at most 128 characters"),
        Some(first) if !(first.is_ascii_alphanumeric() || *first == b'_') => {
            Err("must start with a letter, digit or '_'")
        }
        Some(_) if !bytes.iter().copied().all(is_tag_char) => Err("only letters, digits, '_', '.' and '-' are allowed"),
        Some(_) => Ok(()),
    }
}

fn check_slug(s: &str) -> Result<(), &'static str> {
    let bytes = s.as_bytes();
    match bytes.first() {
        None => Err("must not be empty"),
        Some(_) if bytes.len() > 32 => Err("must be at most 32 characters"),
        Some(first) if !first.is_ascii_lowercase() => Err("must start with a lowercase letter"),
        Some(_)
            if !bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-') =>
        {
            Err("only lowercase letters, digits and '-' are allowed")
        }
        Some(_) => Ok(()),
    }
}

fn check_ecs_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 255 {
        return Err("must be 1 to 255 characters");
    }
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(())
    } else {
        Err("only letters, digits, '-' and '_' are allowed")
    }
}

/// RDS rules: letter first, letters/digits/hyphens, no `--`, no trailing hyphen, ≤ 63.
fn check_db_instance(s: &str) -> Result<(), &'static str> {
    let bytes = s.as_bytes();
    match bytes.first() {
        None => Err("must not be empty"),
        Some(_) if bytes.len() > 63 => Err("must be at most 63 characters"),
        Some(first) if !first.is_ascii_alphabetic() => Err("must start with a letter"),
        Some(_) if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') => {
            Err("only letters, digits and '-' are allowed")
        }
        Some(_) if s.contains("--") => Err("must not contain `--`"),
        Some(_) if s.ends_with('-') => Err("must not end with '-'"),
        Some(_) => Ok(()),
    }
}

/// CloudWatch: 1 to 255 characters, no ASCII control characters.
fn check_alarm(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 255 {
        Err("must be 1 to 255 characters")
    } else if s.chars().any(|c| c.is_ascii_control()) {
        Err("must not contain control characters")
    } else {
        Ok(())
    }
}

fn check_account(s: &str) -> Result<(), &'static str> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("must be 12 digits")
    }
}

fn check_region(s: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let shaped = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(lower)
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if shaped {
        Ok(())
    } else {
        Err("must look like `eu-west-1`")
    }
}

/// A pushed image pinned by digest: `<account>.dkr.ecr.<region>.amazonaws.com/<repo>@<digest>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub account: AccountId,
    pub region: Region,
    pub repository: RepositoryName,
    pub digest: ImageDigest,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.dkr.ecr.{}.amazonaws.com/{}@{}",
            self.account, self.region, self.repository, self.digest
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr_rules() {
        assert!(RepositoryName::parse("social-analytics/backend").is_ok());
        assert!(RepositoryName::parse("a1/b.c_d-e").is_ok());
        for bad in ["", "a", "Social/backend", "a//b", "/a", "a/", "-a/b", "a/b-", "a b"] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn digests_must_be_sha256_hex() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert!(ImageDigest::parse(good).is_ok());
        assert!(ImageDigest::parse(format!("sha256:{}", "AB".repeat(32))).is_err());
        assert!(ImageDigest::parse(format!("sha512:{}", "ab".repeat(32))).is_err());
        assert!(ImageDigest::parse("sha256:abc").is_err());
    }

    #[test]
    fn tags_follow_docker_rules() {
        assert!(ImageTag::parse("v1.2.3").is_ok());
        assert!(ImageTag::parse("main-4f2a_b").is_ok());
        assert!(ImageTag::parse("").is_err());
        assert!(ImageTag::parse(".hidden").is_err());
        assert!(ImageTag::parse("a/b").is_err());
        assert!(ImageTag::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn db_instance_ids_follow_rds_rules() {
        assert!(DbInstanceId::parse("social-analytics-db").is_ok());
        for bad in ["", "1db", "db--x", "db-", "db_x", &"a".repeat(64)] {
            assert!(DbInstanceId::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn approvers_are_plain_addresses() {
        assert!(Approver::parse("alice@example.com").is_ok());
        assert!(Approver::parse("a.b+prod@ops.example.co.uk").is_ok());
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@b@example.com",
            "<a@example.com>",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(Approver::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn image_ref_is_pinned_by_digest() {
        let image = ImageRef {
            account: AccountId::parse("123456789012").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            repository: RepositoryName::parse("social-analytics/backend").unwrap(),
            digest: ImageDigest::parse(format!("sha256:{}", "0".repeat(64))).unwrap(),
        };
        assert_eq!(
            image.to_string(),
            format!(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/social-analytics/backend@sha256:{}",
                "0".repeat(64)
            )
        );
    }

    #[test]
    fn errors_say_what_and_why() {
        let err = StageName::parse("Prod").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid stage name `Prod`: must start with a lowercase letter"
        );
    }
}
