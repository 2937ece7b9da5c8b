//! Test-only builders of findings, so each sink's tests say only what differs.

use super::{Finding, FindingKind, Level, PrincipalRef, Reason, Severity};
use crate::cloudtrail::{AccountId, IdentityType, Timestamp};

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("test timestamps are well formed")
}

/// A new-action finding by role `ci-deploy` in account 111122223333; tests change the fields
/// they are about with struct update syntax.
pub(crate) fn finding(score: u8, level: Level, first_seen: &str) -> Finding {
    let action = "iam:CreateAccessKey";
    Finding {
        id: super::finding_id(&["test", action, first_seen, &score.to_string()]),
        kind: FindingKind::NewAction,
        title: format!("role ci-deploy called {action} for the first time"),
        rule: None,
        account: AccountId::parse("111122223333").expect("a valid account id"),
        principal: PrincipalRef {
            arn: Some("arn:aws:iam::111122223333:role/deploy/ci-deploy".to_string()),
            kind: IdentityType::AssumedRole,
            key: "arn:aws:iam::111122223333:role/deploy/ci-deploy".to_string(),
        },
        action: Some(action.to_string()),
        event_source: Some("iam.amazonaws.com".to_string()),
        event_name: Some("CreateAccessKey".to_string()),
        severity: Severity {
            score,
            level,
            reasons: vec![
                reason("iam-write", 25),
                reason("new-action", 30),
                reason("known-ip", -10),
            ],
        },
        first_seen: at(first_seen),
        last_seen: at(first_seen),
        count: 1,
        source_ips: vec!["203.0.113.10".to_string()],
        user_agents: vec!["aws-cli/2.15.0".to_string()],
        regions: vec!["us-east-1".to_string()],
        error_codes: Vec::new(),
        event_ids: vec!["0b1f8a52-6d3c-4c44-9a55-1f2d3e4c5b6a".to_string()],
        window_start: at("2024-03-01T10:00:00Z"),
        window_end: at("2024-03-01T11:00:00Z"),
        detected_at: at("2024-03-01T11:20:00Z"),
    }
}

pub(crate) fn reason(factor: &str, weight: i32) -> Reason {
    Reason {
        factor: factor.to_string(),
        weight,
        detail: format!("{factor} applied"),
    }
}

/// A writer whose bytes the test can read back after the sink that owns it is done.
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("sinks write UTF-8")
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("capture lock poisoned"))?;
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer standing for a pipe whose reader has gone away.
pub(crate) struct ClosedPipe;

impl std::io::Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
}
