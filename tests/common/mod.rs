//! Shared helpers of the integration tests: where the real CloudTrail samples are, and a
//! one-call run of the library over a folder.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use trailhound::alert::Sink;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::Timestamp;
use trailhound::config::Config;
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster::{self, RunResult};
use trailhound::source::scan::FolderSource;
use trailhound::source::ActivitySource;

/// The folder of the real CloudTrail samples, from `TRAILHOUND_REAL_DATA` (set by
/// scripts/test.sh), or beside the project. Fails loudly rather than skipping silently.
pub fn real_data() -> PathBuf {
    let path = std::env::var_os("TRAILHOUND_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/cloudtrail"
            ))
        });
    assert!(
        path.is_dir(),
        "the real CloudTrail samples are not at {}: set TRAILHOUND_REAL_DATA to shared/data/cloudtrail (scripts/test.sh does)",
        path.display()
    );
    path
}

/// One run of the library: every account of `logs`, over `period`.
pub async fn run(
    config: &Config,
    store: &Arc<SqliteStore>,
    logs: &std::path::Path,
    period: Period,
    mode: Mode,
    sinks: &[Box<dyn Sink>],
) -> RunResult {
    let source = Arc::new(FolderSource::open(logs).expect("logs folder opens"));
    let accounts = source.accounts().await.expect("accounts");
    let hunter = Hunter {
        config: Arc::new(config.clone()),
        store: store.clone(),
        source,
        sinks: sinks.iter().map(|s| s.name()).collect(),
        now: Timestamp::now(),
    };
    muster::run(&hunter, accounts, period, mode, 2, sinks)
        .await
        .expect("run completes")
}

pub fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("test timestamp")
}
