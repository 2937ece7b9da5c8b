//! Findings and every way they leave: open this folder to see each sink.

pub mod finding;
pub mod hec;
pub mod jsonl;
pub mod terminal;
#[cfg(test)]
mod testing;

pub use finding::{finding_id, Finding, FindingKind, Level, PrincipalRef, Reason, Severity};
pub use hec::HecSink;
pub use jsonl::JsonlSink;
pub use terminal::{render_table, TableOptions, TerminalSink};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing findings to {target} failed: {reason}")]
    Write { target: String, reason: String },
    #[error("sink {target} cannot be set up: {reason}")]
    Setup { target: String, reason: String },
    #[error("delivering to {target} failed: {reason}")]
    Http { target: String, reason: String },
}

/// A delivery that stopped part way: the first `accepted` findings of the batch were taken
/// (the outbox marks them delivered); the rest stay pending.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Stopped {
    pub accepted: usize,
    pub error: SinkError,
}

impl From<SinkError> for Stopped {
    fn from(error: SinkError) -> Self {
        Stopped { accepted: 0, error }
    }
}

/// A destination for findings. Delivery is at least once: the outbox hands a sink the
/// findings still pending for it, and marks delivered only what `deliver` says was taken.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The name under which the outbox keeps this sink's delivery state, e.g. `stdout`,
    /// `jsonl:/var/log/trailhound.jsonl` or `hec:splunk`.
    fn name(&self) -> String;

    /// Delivers a batch, sorted by severity, highest first: all of it, or as much as the
    /// error says.
    async fn deliver(&self, findings: &[Finding]) -> Result<(), Stopped>;

    /// How many findings to hand over at once; the outbox records each piece as delivered
    /// before it hands over the next. Local sinks take a whole batch (the table sorts it).
    fn piece_size(&self) -> usize {
        usize::MAX
    }

    /// Takes the run's health event (accounts hunted and failed, findings by level, the
    /// counters). Sinks that carry only findings ignore it.
    async fn report_run(&self, _summary: &serde_json::Value) -> Result<(), SinkError> {
        Ok(())
    }
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
