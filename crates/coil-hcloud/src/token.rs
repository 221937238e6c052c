//! The Hetzner Cloud API token: where it comes from and how it is kept out of logs.
//!
//! Owns reading the token from `HCLOUD_TOKEN` (through a lookup function, so tests never call
//! `set_var`) or from a file (a systemd credential or a mounted secret). The token has no
//! `Display` and its `Debug` prints a placeholder, so it cannot end up in a log line by accident.

use std::fmt;
use std::path::Path;

use crate::error::HcloudError;

/// The environment variable Hetzner's own tools read (`hcloud` CLI, Terraform provider).
pub const TOKEN_ENVIRONMENT_VARIABLE: &str = "HCLOUD_TOKEN";

/// A Hetzner Cloud API token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token; surrounding whitespace (a trailing newline from a file) is dropped.
    pub fn new(token: impl Into<String>) -> Result<Self, HcloudError> {
        let token = token.into();
        let trimmed = token.trim();
        if trimmed.is_empty() {
            return Err(HcloudError::MissingToken {
                reason: "the token is empty".to_owned(),
            });
        }
        if trimmed
            .chars()
            .any(|character| character.is_control() || character == ' ')
        {
            // A token with a space or control character cannot be a valid header value; refuse
            // it here rather than fail later with a less clear error.
            return Err(HcloudError::MissingToken {
                reason: "the token contains whitespace or control characters".to_owned(),
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Reads `HCLOUD_TOKEN` through `lookup` (pass `|name| std::env::var(name).ok()` in a binary,
    /// a map lookup in a test).
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HcloudError> {
        let value =
            lookup(TOKEN_ENVIRONMENT_VARIABLE).ok_or_else(|| HcloudError::MissingToken {
                reason: format!("{TOKEN_ENVIRONMENT_VARIABLE} is not set"),
            })?;
        Self::new(value)
    }

    /// Reads `HCLOUD_TOKEN` from the process environment.
    pub fn from_process_environment() -> Result<Self, HcloudError> {
        Self::from_environment(|name| std::env::var(name).ok())
    }

    /// Reads the token from a file holding only the token (trailing newline allowed).
    pub fn from_file(path: &Path) -> Result<Self, HcloudError> {
        let contents = std::fs::read_to_string(path).map_err(|source| HcloudError::TokenFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(contents)
    }

    /// The secret itself, for the `Authorization` header only.
    pub(crate) fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_the_token_from_an_environment_map() {
        let environment = HashMap::from([(TOKEN_ENVIRONMENT_VARIABLE, "abc123")]);
        let token = ApiToken::from_environment(|name| {
            environment.get(name).map(|value| (*value).to_owned())
        })
        .unwrap();
        assert_eq!(token.expose_secret(), "abc123");
        let missing = ApiToken::from_environment(|_| None).unwrap_err();
        assert!(matches!(missing, HcloudError::MissingToken { .. }));
    }

    #[test]
    fn reads_the_token_from_a_file_without_its_newline() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "file-token-42").unwrap();
        let token = ApiToken::from_file(file.path()).unwrap();
        assert_eq!(token.expose_secret(), "file-token-42");
        let gone = ApiToken::from_file(Path::new("/nonexistent/coil/token")).unwrap_err();
        assert!(matches!(gone, HcloudError::TokenFile { .. }));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = ApiToken::new("super-secret").unwrap();
        assert!(!format!("{token:?}").contains("super-secret"));
        assert!(ApiToken::new("  \n").is_err());
        assert!(ApiToken::new("two words").is_err());
    }
}
