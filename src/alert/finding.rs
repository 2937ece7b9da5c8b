//! The finding: what an analyst receives, in every sink the same shape.
//!
//! The schema is documented in the README; fields are added, never renamed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cloudtrail::{AccountId, IdentityType, Timestamp};

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A principal succeeded at an action it has not done before.
    NewAction,
    /// A principal was refused an action it has not been refused (nor done) before.
    NewDeniedAction,
    /// A principal attempted an action it has not done before and the call failed with an
    /// error other than a refusal (`TrailNotFoundException` for a `StopLogging`, say): it was
    /// allowed to try, which matters as much as succeeding.
    NewFailedAction,
    /// A principal was refused many actions it never tried before, in one window: probing
    /// what its credentials allow. Replaces the single refusals it is made of.
    DeniedBurst,
    /// A principal appeared in an account that already has history.
    NewPrincipal,
    /// A principal with known habits acted with several new things at once (network, client,
    /// region), whatever its actions.
    NewContext,
    /// An account could not be hunted.
    HuntFailed,
    /// A rule fired (the rule's id is in `rule`).
    Rule,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::NewAction => "new-action",
            FindingKind::NewDeniedAction => "new-denied-action",
            FindingKind::NewFailedAction => "new-failed-action",
            FindingKind::DeniedBurst => "denied-burst",
            FindingKind::NewPrincipal => "new-principal",
            FindingKind::NewContext => "new-context",
            FindingKind::HuntFailed => "hunt-failed",
            FindingKind::Rule => "rule",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
    pub const ALL: [Level; 5] = [
        Level::Critical,
        Level::High,
        Level::Medium,
        Level::Low,
        Level::Informational,
    ];
}

/// One factor of a severity: its name, how much it added (or took away), and what it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub factor: String,
    pub weight: i32,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    /// 0–100.
    pub score: u8,
    pub level: Level,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRef {
    pub arn: Option<String>,
    #[serde(rename = "type")]
    pub kind: IdentityType,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Hash of what the finding is about; a re-delivery carries the same id.
    pub id: String,
    pub kind: FindingKind,
    /// One line for a person.
    pub title: String,
    /// The rule that fired, for kind `rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub account: AccountId,
    pub principal: PrincipalRef,
    /// `service:Name`, absent for findings about a principal or an account.
    pub action: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub severity: Severity,
    /// First and last eventTime of the calls behind the finding.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    pub source_ips: Vec<String>,
    pub user_agents: Vec<String>,
    pub regions: Vec<String>,
    pub error_codes: Vec<String>,
    /// Sample eventIDs to pivot on.
    pub event_ids: Vec<String>,
    /// The delivery-time window that was hunted.
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    /// When trailhound produced it.
    pub detected_at: Timestamp,
}

/// A stable id from the facts a finding is about: the same facts always give the same id.
pub fn finding_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_id_is_stable_and_unambiguous() {
        assert_eq!(finding_id(&["a", "b"]), finding_id(&["a", "b"]));
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(finding_id(&["ab", "c"]), finding_id(&["a", "bc"]));
        assert_eq!(finding_id(&["x"]).len(), 32);
    }
}
