//! The collector's token: loaded from where the config says, and never shown. It has no
//! `Display`, its `Debug` is redacted, it goes into requests only as a sensitive header, and
//! any text that came back from the wire is scrubbed of it before it reaches an error.

use std::fmt;
use std::path::Path;

use http::HeaderValue;

use crate::config::TokenSource;

/// What stands in for the token wherever it would have appeared.
pub const REDACTED: &str = "[redacted]";

#[derive(Clone)]
pub struct HecToken(String);

impl fmt::Debug for HecToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HecToken({REDACTED})")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the HEC token variable {0} is not set")]
    EnvMissing(String),
    #[error("the HEC token file {path} cannot be read: {reason}")]
    File { path: String, reason: String },
    #[error("the HEC token secret {id} cannot be read: {reason}")]
    Secret { id: String, reason: String },
    #[error("the HEC token from {from} {problem}")]
    Malformed { from: String, problem: &'static str },
}

impl HecToken {
    /// Checks the token's form without ever echoing it: HEC tokens are GUIDs, but any
    /// printable text without whitespace is accepted.
    pub fn new(text: &str, from: &str) -> Result<HecToken, TokenError> {
        let text = text.trim();
        let problem = if text.is_empty() {
            Some("is empty")
        } else if text.len() > 4096 {
            Some("is longer than 4096 bytes")
        } else if !text.chars().all(|c| c.is_ascii_graphic()) {
            Some("contains whitespace, control or non-ASCII characters")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(TokenError::Malformed {
                from: from.to_string(),
                problem,
            }),
            None => Ok(HecToken(text.to_string())),
        }
    }

    /// The `Authorization` header, marked sensitive so that HTTP layers do not log it.
    pub fn header(&self) -> HeaderValue {
        // `new` allowed only visible ASCII, which is always a valid header value.
        let mut value = HeaderValue::from_str(&format!("Splunk {}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static("Splunk"));
        value.set_sensitive(true);
        value
    }

    /// `text` with every occurrence of the token replaced: for anything that came from the
    /// wire (a proxy might echo a request) on its way into an error.
    pub fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, REDACTED)
    }

    /// Loads the token from an environment variable or a file. Secrets Manager is read by
    /// [`HecToken::from_secret_value`] once the caller fetched the secret.
    pub fn load_local(source: &TokenSource) -> Option<Result<HecToken, TokenError>> {
        match source {
            TokenSource::Env(var) => Some(match std::env::var(var) {
                Ok(v) => HecToken::new(&v, &format!("variable {var}")),
                Err(_) => Err(TokenError::EnvMissing(var.clone())),
            }),
            TokenSource::File(path) => Some(read_file(path)),
            TokenSource::Secret { .. } => None,
        }
    }

    /// The token from a secret's string value: the value itself, or the field `key` of a
    /// JSON object.
    pub fn from_secret_value(
        value: &str,
        id: &str,
        key: Option<&str>,
    ) -> Result<HecToken, TokenError> {
        let from = format!("secret {id}");
        let json = serde_json::from_str::<serde_json::Value>(value).ok();
        match (key, json) {
            (Some(key), Some(serde_json::Value::Object(map))) => match map.get(key) {
                Some(serde_json::Value::String(s)) => HecToken::new(s, &from),
                Some(_) => Err(TokenError::Malformed {
                    from: format!("{from}, key {key}"),
                    problem: "is not a string",
                }),
                None => Err(TokenError::Secret {
                    id: id.to_string(),
                    reason: format!("the secret is a JSON object without the key {key}"),
                }),
            },
            (Some(key), _) => Err(TokenError::Secret {
                id: id.to_string(),
                reason: format!(
                    "token_secret_key is {key} but the secret is not a JSON object"
                ),
            }),
            (None, Some(serde_json::Value::Object(_))) => Err(TokenError::Secret {
                id: id.to_string(),
                reason: "the secret is a JSON object; set token_secret_key to the field holding the token".into(),
            }),
            (None, _) => HecToken::new(value, &from),
        }
    }
}

/// Reads the token from a Secrets Manager secret (its current version).
pub async fn fetch_secret(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    key: Option<&str>,
) -> Result<HecToken, TokenError> {
    let answer = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| TokenError::Secret {
            id: id.to_string(),
            // The service's error names the secret and the problem, never a value.
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    let value = answer.secret_string().ok_or_else(|| TokenError::Secret {
        id: id.to_string(),
        reason: "the secret has no string value (binary secrets are not supported)".into(),
    })?;
    HecToken::from_secret_value(value, id, key)
}

fn read_file(path: &Path) -> Result<HecToken, TokenError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::File {
        path: shown.clone(),
        reason: e.kind().to_string(),
    })?;
    warn_if_readable_by_others(path);
    HecToken::new(&text, &format!("file {shown}"))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the HEC token file is readable by every user of this machine; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn the_token_never_prints() {
        let t = HecToken::new(MARK, "test").unwrap();
        assert!(!format!("{t:?}").contains(MARK));
        assert!(t.header().is_sensitive());
        assert!(!format!("{:?}", t.header()).contains(MARK));
        assert_eq!(
            t.scrub(&format!("proxy said: bad {MARK}!")),
            "proxy said: bad [redacted]!"
        );
    }

    #[test]
    fn malformed_tokens_are_refused_without_echo() {
        for bad in ["", "  \n", "two words", "tab\there"] {
            let e = HecToken::new(bad, "file /t").unwrap_err().to_string();
            assert!(e.contains("file /t"), "{e}");
            if !bad.trim().is_empty() {
                assert!(!e.contains(bad.trim()), "{e}");
            }
        }
        // Surrounding whitespace, as a file's newline, is not part of the token.
        let t = HecToken::new(&format!("{MARK}\n"), "f").unwrap();
        assert_eq!(t.header().to_str().unwrap(), format!("Splunk {MARK}"));
    }

    #[test]
    fn secrets_hold_the_token_plain_or_under_a_key() {
        let plain = HecToken::from_secret_value(MARK, "s", None).unwrap();
        assert_eq!(plain.header().to_str().unwrap(), format!("Splunk {MARK}"));
        let json = format!(r#"{{"hec_token":"{MARK}"}}"#);
        let keyed = HecToken::from_secret_value(&json, "s", Some("hec_token")).unwrap();
        assert_eq!(keyed.header(), plain.header());
        let e = HecToken::from_secret_value(&json, "s", None).unwrap_err();
        assert!(e.to_string().contains("token_secret_key"), "{e}");
        assert!(!e.to_string().contains(MARK));
        let e = HecToken::from_secret_value(&json, "s", Some("other")).unwrap_err();
        assert!(e.to_string().contains("without the key other"), "{e}");
    }

    #[test]
    fn files_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{MARK}\n")).unwrap();
        let t = HecToken::load_local(&TokenSource::File(path.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(t.header().to_str().unwrap(), format!("Splunk {MARK}"));
        let missing = HecToken::load_local(&TokenSource::File(dir.path().join("nope")))
            .unwrap()
            .unwrap_err();
        assert!(missing.to_string().contains("cannot be read"), "{missing}");
        let unset = HecToken::load_local(&TokenSource::Env(
            "TRAILHOUND_TEST_SURELY_UNSET_VARIABLE".into(),
        ))
        .unwrap()
        .unwrap_err();
        assert!(unset.to_string().contains("is not set"), "{unset}");
    }
}
