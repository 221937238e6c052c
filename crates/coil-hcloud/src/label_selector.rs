//! Hetzner label selectors: parsing, matching and building.
//!
//! Grammar as published (docs.hetzner.cloud, "Label Selector"): requirements separated by
//! commas, all of which must hold (`k1==v,!k2`); each requirement is `k=v` / `k==v` (equals),
//! `k!=v` (not equals), `k` (key present), `!k` (key absent), `k in (v1,v2)` or
//! `k notin (v1,v2)`. Commas inside parentheses belong to the value set.
//!
//! The client uses the builder to produce selector strings; the stand-in uses the parser and
//! `matches`. Parsing is pure and never panics on any input. This module does no IO.

use std::collections::BTreeMap;
use std::fmt;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals { key: String, value: String },
    NotEquals { key: String, value: String },
    Exists { key: String },
    NotExists { key: String },
    In { key: String, values: Vec<String> },
    NotIn { key: String, values: Vec<String> },
}

impl LabelRequirement {
    /// Whether `labels` satisfy this requirement.
    ///
    /// As in Kubernetes, from which Hetzner's syntax comes, `!=` and `notin` also hold for
    /// resources that do not carry the key at all.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals { key, value } => labels.get(key) == Some(value),
            Self::NotEquals { key, value } => labels.get(key) != Some(value),
            Self::Exists { key } => labels.contains_key(key),
            Self::NotExists { key } => !labels.contains_key(key),
            Self::In { key, values } => labels.get(key).is_some_and(|have| values.contains(have)),
            Self::NotIn { key, values } => {
                labels.get(key).is_none_or(|have| !values.contains(have))
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Equals { key, value } => write!(formatter, "{key}=={value}"),
            Self::NotEquals { key, value } => write!(formatter, "{key}!={value}"),
            Self::Exists { key } => write!(formatter, "{key}"),
            Self::NotExists { key } => write!(formatter, "!{key}"),
            Self::In { key, values } => write!(formatter, "{key} in ({})", values.join(",")),
            Self::NotIn { key, values } => write!(formatter, "{key} notin ({})", values.join(",")),
        }
    }
}

/// A parsed selector: all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<LabelRequirement>,
}

/// Why a selector string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorError {
    #[error("empty requirement at position {position}")]
    EmptyRequirement { position: usize },
    #[error("invalid label key {key:?}")]
    InvalidKey { key: String },
    #[error("invalid label value {value:?}")]
    InvalidValue { value: String },
    #[error("unbalanced parentheses")]
    UnbalancedParentheses,
    #[error("malformed requirement {requirement:?}")]
    Malformed { requirement: String },
}

impl LabelSelector {
    /// The selector that matches every resource.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Adds `key==value`.
    pub fn with_equals(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.requirements.push(LabelRequirement::Equals {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds `key!=value`.
    pub fn with_not_equals(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.requirements.push(LabelRequirement::NotEquals {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds `key` (present).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.requirements
            .push(LabelRequirement::Exists { key: key.into() });
        self
    }

    /// Adds `!key` (absent).
    pub fn without_key(mut self, key: impl Into<String>) -> Self {
        self.requirements
            .push(LabelRequirement::NotExists { key: key.into() });
        self
    }

    /// Parses a selector string. Whitespace around requirements is ignored.
    pub fn parse(text: &str) -> Result<Self, LabelSelectorError> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for (position, term) in split_top_level_commas(text)?.into_iter().enumerate() {
            let term = term.trim();
            if term.is_empty() {
                return Err(LabelSelectorError::EmptyRequirement { position });
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(Self { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| requirement.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.requirements.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            write!(formatter, "{requirement}")?;
        }
        Ok(())
    }
}

fn split_top_level_commas(text: &str) -> Result<Vec<&str>, LabelSelectorError> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (index, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(LabelSelectorError::UnbalancedParentheses)?;
            }
            ',' if depth == 0 => {
                terms.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(LabelSelectorError::UnbalancedParentheses);
    }
    terms.push(&text[start..]);
    Ok(terms)
}

fn parse_requirement(term: &str) -> Result<LabelRequirement, LabelSelectorError> {
    if let Some((key, values)) = split_set_operator(term, "notin") {
        let key = checked_key(key)?;
        return Ok(LabelRequirement::NotIn {
            key,
            values: parse_value_set(values, term)?,
        });
    }
    if let Some((key, values)) = split_set_operator(term, "in") {
        let key = checked_key(key)?;
        return Ok(LabelRequirement::In {
            key,
            values: parse_value_set(values, term)?,
        });
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(LabelRequirement::NotEquals {
            key: checked_key(key.trim())?,
            value: checked_value(value.trim())?,
        });
    }
    if let Some((key, value)) = term.split_once("==") {
        return Ok(LabelRequirement::Equals {
            key: checked_key(key.trim())?,
            value: checked_value(value.trim())?,
        });
    }
    if let Some((key, value)) = term.split_once('=') {
        return Ok(LabelRequirement::Equals {
            key: checked_key(key.trim())?,
            value: checked_value(value.trim())?,
        });
    }
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists {
            key: checked_key(key.trim())?,
        });
    }
    Ok(LabelRequirement::Exists {
        key: checked_key(term)?,
    })
}

/// Splits `key <operator> (values)` into key and the parenthesised part, or `None` if the term
/// does not have that shape.
fn split_set_operator<'term>(term: &'term str, operator: &str) -> Option<(&'term str, &'term str)> {
    let mut words = term.splitn(2, char::is_whitespace);
    let key = words.next()?;
    let rest = words.next()?.trim_start();
    let after_operator = rest.strip_prefix(operator)?;
    let values = after_operator.trim_start();
    // `k in(a)` and `k in (a)` are both accepted; `k inx` is not a set operator.
    if !values.starts_with('(') {
        return None;
    }
    Some((key, values))
}

fn parse_value_set(parenthesised: &str, term: &str) -> Result<Vec<String>, LabelSelectorError> {
    let inner = parenthesised
        .strip_prefix('(')
        .and_then(|rest| rest.trim_end().strip_suffix(')'))
        .ok_or_else(|| LabelSelectorError::Malformed {
            requirement: term.to_owned(),
        })?;
    if inner.contains('(') || inner.contains(')') {
        return Err(LabelSelectorError::Malformed {
            requirement: term.to_owned(),
        });
    }
    let values = inner
        .split(',')
        .map(|value| checked_value(value.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if values.iter().all(String::is_empty) {
        return Err(LabelSelectorError::Malformed {
            requirement: term.to_owned(),
        });
    }
    Ok(values)
}

fn checked_key(key: &str) -> Result<String, LabelSelectorError> {
    if is_valid_label_key(key) {
        Ok(key.to_owned())
    } else {
        Err(LabelSelectorError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

fn checked_value(value: &str) -> Result<String, LabelSelectorError> {
    if is_valid_label_value(value) {
        Ok(value.to_owned())
    } else {
        Err(LabelSelectorError::InvalidValue {
            value: value.to_owned(),
        })
    }
}

fn is_name_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters that
/// begins and ends alphanumeric with `-`, `_`, `.` between (the published label rules).
pub fn is_valid_label_key(key: &str) -> bool {
    match key.split_once('/') {
        None => is_name_segment(key),
        Some((prefix, name)) => {
            prefix.len() <= 253
                && !prefix.is_empty()
                && prefix.split('.').all(|label| {
                    let bytes = label.as_bytes();
                    !bytes.is_empty()
                        && bytes.len() <= 63
                        && bytes[0].is_ascii_alphanumeric()
                        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                        && bytes
                            .iter()
                            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
                })
                && is_name_segment(name)
        }
    }
}

/// A label value: empty, or at most 63 characters beginning and ending alphanumeric with `-`,
/// `_`, `.` between.
pub fn is_valid_label_value(value: &str) -> bool {
    value.is_empty() || is_name_segment(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_published_requirement_form() {
        let selector = LabelSelector::parse(
            "role=game-node, env==prod,tier!=db,coil.dev/region,!draining,zone in (fsn1, nbg1),size notin (small)",
        )
        .unwrap();
        assert_eq!(
            selector.requirements,
            vec![
                LabelRequirement::Equals {
                    key: "role".into(),
                    value: "game-node".into()
                },
                LabelRequirement::Equals {
                    key: "env".into(),
                    value: "prod".into()
                },
                LabelRequirement::NotEquals {
                    key: "tier".into(),
                    value: "db".into()
                },
                LabelRequirement::Exists {
                    key: "coil.dev/region".into()
                },
                LabelRequirement::NotExists {
                    key: "draining".into()
                },
                LabelRequirement::In {
                    key: "zone".into(),
                    values: vec!["fsn1".into(), "nbg1".into()]
                },
                LabelRequirement::NotIn {
                    key: "size".into(),
                    values: vec!["small".into()]
                },
            ]
        );
    }

    #[test]
    fn comma_means_and() {
        let selector = LabelSelector::parse("role=game-node,!draining").unwrap();
        assert!(selector.matches(&labels(&[("role", "game-node")])));
        assert!(!selector.matches(&labels(&[("role", "game-node"), ("draining", "")])));
        assert!(!selector.matches(&labels(&[("role", "matchmaker")])));
        assert!(!selector.matches(&labels(&[])));
    }

    #[test]
    fn key_presence_absence_and_sets_match_as_documented() {
        let node = labels(&[("role", "game-node"), ("zone", "fsn1")]);
        assert!(LabelSelector::parse("role").unwrap().matches(&node));
        assert!(!LabelSelector::parse("!role").unwrap().matches(&node));
        assert!(LabelSelector::parse("!other").unwrap().matches(&node));
        assert!(
            LabelSelector::parse("zone in (hel1,fsn1)")
                .unwrap()
                .matches(&node)
        );
        assert!(
            !LabelSelector::parse("zone notin (hel1,fsn1)")
                .unwrap()
                .matches(&node)
        );
        assert!(
            LabelSelector::parse("missing notin (a)")
                .unwrap()
                .matches(&node)
        );
        assert!(
            !LabelSelector::parse("missing in (a)")
                .unwrap()
                .matches(&node)
        );
        assert!(
            LabelSelector::parse("role!=matchmaker")
                .unwrap()
                .matches(&node)
        );
        assert!(
            !LabelSelector::parse("role!=game-node")
                .unwrap()
                .matches(&node)
        );
        // Like Kubernetes: a resource without the key satisfies `!=`.
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&node));
        assert!(LabelSelector::parse("").unwrap().matches(&node));
    }

    #[test]
    fn refuses_malformed_selectors() {
        assert_eq!(
            LabelSelector::parse("a=b,,c"),
            Err(LabelSelectorError::EmptyRequirement { position: 1 })
        );
        assert_eq!(
            LabelSelector::parse("a=b,"),
            Err(LabelSelectorError::EmptyRequirement { position: 1 })
        );
        assert_eq!(
            LabelSelector::parse("zone in (a,b"),
            Err(LabelSelectorError::UnbalancedParentheses)
        );
        assert!(matches!(
            LabelSelector::parse("-bad=x"),
            Err(LabelSelectorError::InvalidKey { .. })
        ));
        assert!(matches!(
            LabelSelector::parse("k=bad value"),
            Err(LabelSelectorError::InvalidValue { .. })
        ));
        assert!(matches!(
            LabelSelector::parse("zone in ()"),
            Err(LabelSelectorError::Malformed { .. })
        ));
        assert!(matches!(
            LabelSelector::parse("!"),
            Err(LabelSelectorError::InvalidKey { .. })
        ));
    }

    #[test]
    fn built_selectors_print_in_a_form_the_parser_reads_back() {
        let built = LabelSelector::everything()
            .with_equals("role", "game-node")
            .with_not_equals("env", "dev")
            .with_key("coil.dev/pool")
            .without_key("draining");
        let text = built.to_string();
        assert_eq!(text, "role==game-node,env!=dev,coil.dev/pool,!draining");
        assert_eq!(LabelSelector::parse(&text).unwrap(), built);
    }

    #[test]
    fn label_key_and_value_rules() {
        assert!(is_valid_label_key("example.com/my"));
        assert!(is_valid_label_key("just-a-key"));
        assert!(!is_valid_label_key("/name"));
        assert!(!is_valid_label_key("name-"));
        assert!(!is_valid_label_key(&"k".repeat(64)));
        assert!(is_valid_label_value(""));
        assert!(is_valid_label_value("v1.2_3"));
        assert!(!is_valid_label_value("has space"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in ".{0,80}") {
            let _ = LabelSelector::parse(&text);
        }

        #[test]
        fn parsed_selectors_survive_printing(text in "[a-z!=, ()]{0,40}") {
            if let Ok(parsed) = LabelSelector::parse(&text) {
                let printed = parsed.to_string();
                proptest::prop_assert_eq!(LabelSelector::parse(&printed), Ok(parsed));
            }
        }
    }
}
