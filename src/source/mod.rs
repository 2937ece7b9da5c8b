//! Activity sources: where the distinct (principal, action, outcome) rows of a window come from.
//!
//! `scan` reads CloudTrail objects from a local folder and `s3` from the CloudTrail bucket,
//! both folding them with `fold`; Athena joins them for organisation scale. The hunt sees
//! only [`ActivitySource`].

pub mod activity;
pub mod athena;
mod fold;
pub mod s3;
pub mod scan;

pub use activity::{Activity, ActivityBatch, Samples, ScanReport};

use async_trait::async_trait;

use crate::cloudtrail::AccountId;
use crate::window::Window;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the logs folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("the activity scan stopped: {0}")]
    Scan(String),
    /// An S3 call of the bucket scan failed; `code` is S3's error code.
    #[error("s3:{call} {url} failed with {code}: {message}")]
    S3 {
        call: &'static str,
        url: String,
        code: String,
        message: String,
    },
}

/// Produces the activity rows of one account and one delivery-time window.
#[async_trait]
pub trait ActivitySource: Send + Sync {
    /// The accounts this source holds logs for, sorted.
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError>;

    /// The distinct activity of `account` in objects delivered within `window`. Problems with
    /// single objects or records are counted in the batch's report, not returned as errors.
    /// What the Athena source has spent so far (queries, bytes scanned); `None` for sources
    /// that run no queries.
    fn athena_counters(&self) -> Option<athena::AthenaCounters> {
        None
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError>;
}
