//! Findings and every way they leave: open this folder to see each sink.

pub mod finding;

pub use finding::{finding_id, Finding, FindingKind, Level, PrincipalRef, Reason, Severity};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing findings to {target} failed: {reason}")]
    Write { target: String, reason: String },
}

/// A destination for findings. Delivery is at least once: the outbox hands a sink the
/// findings still pending for it, and marks them delivered only when `deliver` returns `Ok`.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The name under which the outbox keeps this sink's delivery state, e.g. `stdout` or
    /// `jsonl:/var/log/trailhound.jsonl`.
    fn name(&self) -> String;

    /// Delivers a batch, all of it or an error. The batch is sorted by severity, highest first.
    async fn deliver(&self, findings: &[Finding]) -> Result<(), SinkError>;
}
