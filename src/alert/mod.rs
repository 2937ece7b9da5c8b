//! Findings and every way they leave: open this folder to see each sink.

pub mod finding;
pub mod jsonl;
pub mod terminal;
#[cfg(test)]
mod testing;

pub use finding::{finding_id, Finding, FindingKind, Level, PrincipalRef, Reason, Severity};
pub use jsonl::JsonlSink;
pub use terminal::{render_table, TableOptions, TerminalSink};

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

/// Turns an I/O failure of a local sink into a [`SinkError`]. A reader that went away (a closed
/// pipe, as when the output is piped into `head`) is named as such: the findings stay pending,
/// and nothing is wrong with trailhound.
pub(crate) fn io_failure(target: &str, step: &str, err: &std::io::Error) -> SinkError {
    let reason = if err.kind() == std::io::ErrorKind::BrokenPipe {
        format!("{step}: the reader closed the pipe; the findings stay pending for this sink")
    } else {
        format!("{step}: {err}")
    };
    SinkError::Write {
        target: target.to_string(),
        reason,
    }
}
