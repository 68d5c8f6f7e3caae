//! Which image tags a stage deploys: a glob over the tag, `*` for any run of characters and
//! `?` for exactly one. Anything else must be a character a tag can hold, so a typo such as
//! `v[0-9]*` is rejected when the pipeline file is loaded instead of silently matching nothing.

use super::names::{ImageTag, InvalidName, is_tag_char};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule(String);

impl TagRule {
    pub fn parse(pattern: &str) -> Result<Self, InvalidName> {
        let invalid = |why| InvalidName {
            what: "tag rule",
            value: pattern.to_owned(),
            why,
        };
        if pattern.is_empty() {
            return Err(invalid("must not be empty (use `*` for every tag)"));
        }
        if pattern.len() > 128 {
            return Err(invalid("must be at most 128 characters"));
        }
        if !pattern.bytes().all(|b| is_tag_char(b) || b == b'*' || b == b'?') {
            return Err(invalid("only tag characters and the wildcards `*` and `?` are allowed"));
        }
        Ok(Self(pattern.to_owned()))
    }

    pub fn matches(&self, tag: &ImageTag) -> bool {
        glob_match(self.0.as_bytes(), tag.as_str().as_bytes())
    }
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Linear-time wildcard match: on a mismatch, backtrack to just after the last `*`.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(rule: &str, tag: &str) -> bool {
        TagRule::parse(rule).unwrap().matches(&ImageTag::parse(tag).unwrap())
    }

    #[test]
    fn star_matches_every_tag() {
        assert!(matches("*", "latest"));
        assert!(matches("*", "v1"));
    }

    #[test]
    fn prefix_rules() {
        assert!(matches("main-*", "main-4f2a9c1"));
        assert!(matches("main-*", "main-"));
        assert!(!matches("main-*", "feature-main-1"));
        assert!(matches("v*", "v1.2.3"));
        assert!(!matches("v*", "latest"));
    }

    #[test]
    fn literal_and_single_character_rules() {
        assert!(matches("latest", "latest"));
        assert!(!matches("latest", "latest2"));
        assert!(matches("v?.?", "v1.2"));
        assert!(!matches("v?.?", "v10.2"));
        assert!(matches("*-rc*", "v2-rc1"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn bad_globs_are_rejected_with_a_reason() {
        for bad in ["", "v[0-9]*", "v{1,2}", "main/*", "a b"] {
            let err = TagRule::parse(bad).unwrap_err();
            assert_eq!(err.what, "tag rule", "{bad}");
        }
    }
}
