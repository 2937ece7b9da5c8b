//! How a call ended, from its `errorCode`.

use serde::{Deserialize, Serialize};

/// Success or the class of error. Denied calls are never learned as normal behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Access was refused: `AccessDenied`, `UnauthorizedOperation`, `Client.UnauthorizedOperation`, ...
    Denied,
    /// Rate limited: `ThrottlingException`, `RequestLimitExceeded`, ...
    Throttled,
    /// Any other error (validation, not found, ...).
    Failed,
}

impl Outcome {
    pub fn of(error_code: Option<&str>) -> Self {
        let Some(code) = error_code else {
            return Outcome::Success;
        };
        let c = code.to_ascii_lowercase();
        if c.contains("accessdenied")
            || c.contains("unauthorized")
            || c.contains("notauthorized")
            || c.contains("forbidden")
            || c.contains("authfailure")
            || c.contains("invalidclienttokenid")
            || c.contains("signaturedoesnotmatch")
        {
            Outcome::Denied
        } else if c.contains("throttl") || c.contains("limitexceeded") || c.contains("slowdown") {
            Outcome::Throttled
        } else {
            Outcome::Failed
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Throttled => "throttled",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Outcome::Success,
            Outcome::Denied,
            Outcome::Throttled,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.name() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_classed() {
        assert_eq!(Outcome::of(None), Outcome::Success);
        assert_eq!(Outcome::of(Some("AccessDenied")), Outcome::Denied);
        assert_eq!(
            Outcome::of(Some("Client.UnauthorizedOperation")),
            Outcome::Denied
        );
        assert_eq!(Outcome::of(Some("ThrottlingException")), Outcome::Throttled);
        assert_eq!(Outcome::of(Some("NoSuchBucket")), Outcome::Failed);
    }
}
