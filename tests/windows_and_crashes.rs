//! Consecutive hunts tile delivery time (midnight, late events), and a hunt stopped part way
//! loses nothing when run again.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{t, user_call, write_object};
use trailhound::alert::{Finding, JsonlSink, Sink};
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::baseline::BaselineStore;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::Config;
use trailhound::detect::{Detector, Mode};
use trailhound::hunt::{Hunter, Period};
use trailhound::muster;
use trailhound::source::scan::FolderSource;

const ACCOUNT: &str = "111122223333";

fn config() -> Config {
    let mut c = Config::default();
    c.hunt.min_principal_age = Span::ZERO;
    c.hunt.lookback = Span::hours(2);
    c
}

fn hunter(
    store: &Arc<SqliteStore>,
    logs: &std::path::Path,
    now: &str,
    sinks: &[Box<dyn Sink>],
) -> Hunter {
    Hunter {
        config: Arc::new(config()),
        store: store.clone(),
        source: Arc::new(FolderSource::open(logs).unwrap()),
        sinks: sinks.iter().map(|s| s.name()).collect(),
        now: t(now),
        rules: Default::default(),
    }
}

/// One scheduled hunt of the test account, delivering to `sinks`.
async fn hunt_scheduled(h: &Hunter, sinks: &[Box<dyn Sink>]) -> muster::RunResult {
    let accounts = vec![AccountId::parse(ACCOUNT).unwrap()];
    muster::run(h, accounts, Period::Scheduled, Mode::Hunt, 1, sinks)
        .await
        .unwrap()
}

fn read_jsonl(path: &std::path::Path) -> Vec<Finding> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Three objects around midnight; one carries an event from before midnight delivered after.
fn midnight_logs(root: &std::path::Path) {
    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-01T23:45:00Z",
        &[user_call(
            ACCOUNT,
            "alice",
            "s3.amazonaws.com",
            "ListBuckets",
            "2024-03-01T23:41:00Z",
            "e1",
        )],
    );
    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-02T00:05:00Z",
        &[user_call(
            ACCOUNT,
            "alice",
            "iam.amazonaws.com",
            "ListUsers",
            "2024-03-01T23:12:00Z",
            "e2",
        )],
    );
    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-02T00:20:00Z",
        &[user_call(
            ACCOUNT,
            "alice",
            "ec2.amazonaws.com",
            "DescribeInstances",
            "2024-03-02T00:16:00Z",
            "e3",
        )],
    );
}

#[tokio::test]
async fn consecutive_hunts_across_midnight_read_every_object_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    midnight_logs(&logs);
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let account = AccountId::parse(ACCOUNT).unwrap();
    let mut read = 0;
    let mut actions = Vec::new();
    // Hourly-ish runs with a 10 minute settle: 23:59, 00:12, 00:40.
    for now in [
        "2024-03-01T23:59:00Z",
        "2024-03-02T00:12:00Z",
        "2024-03-02T00:40:00Z",
    ] {
        let h = hunter(&store, &logs, now, &[]);
        let report = h
            .run_account(&account, Period::Scheduled, Mode::Hunt)
            .await
            .unwrap();
        read += report.scan.objects_read;
        actions.extend(report.findings.iter().filter_map(|f| f.action.clone()));
    }
    assert_eq!(read, 3, "each object is read exactly once");
    actions.sort();
    assert_eq!(
        actions,
        ["ec2:DescribeInstances", "iam:ListUsers", "s3:ListBuckets"]
    );
    let cursor = store.cursor(&account).await.unwrap();
    assert_eq!(cursor.watermark, Some(t("2024-03-02T00:30:00Z")));
}

#[tokio::test]
async fn a_late_object_waits_for_the_window_of_its_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    midnight_logs(&logs);
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let account = AccountId::parse(ACCOUNT).unwrap();
    // At 00:12 with settle 10m, objects delivered at 00:05 are not settled... (00:02 cut-off).
    let h = hunter(&store, &logs, "2024-03-02T00:12:00Z", &[]);
    let first = h
        .run_account(&account, Period::Scheduled, Mode::Hunt)
        .await
        .unwrap();
    assert_eq!(first.scan.objects_read, 1);
    // ... and the next run picks them up, including the event from 23:12.
    let h = hunter(&store, &logs, "2024-03-02T01:00:00Z", &[]);
    let second = h
        .run_account(&account, Period::Scheduled, Mode::Hunt)
        .await
        .unwrap();
    assert_eq!(second.scan.objects_read, 2);
    assert!(second
        .findings
        .iter()
        .any(|f| f.first_seen == t("2024-03-01T23:12:00Z")));
}

/// Stops a hunt after detection and staging, before the commit: what a kill at that point
/// leaves behind. Returns the findings the stopped run had found.
async fn stopped_after_staging(
    store: &Arc<SqliteStore>,
    logs: &std::path::Path,
    now: &str,
    sinks: &[String],
) -> Vec<Finding> {
    let h = hunter(store, logs, now, &[]);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let windows = h.windows(&account, Period::Scheduled).await.unwrap();
    let window = windows[0];
    store.begin_window(&account, window.end).await.unwrap();
    let batch = trailhound::source::ActivitySource::activity(h.source.as_ref(), &account, &window)
        .await
        .unwrap();
    let detection = Detector::new(&h.config)
        .detect(store.as_ref(), &batch, Mode::Hunt, h.now)
        .await
        .unwrap();
    store.stage(&detection.findings, sinks).await.unwrap();
    detection.findings
}

#[tokio::test]
async fn a_hunt_stopped_before_commit_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    midnight_logs(&logs);

    // The reference: a run with no stop.
    let clean_out = dir.path().join("clean.jsonl");
    let clean_store = Arc::new(SqliteStore::open(&dir.path().join("clean.db")).unwrap());
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(&clean_out).unwrap())];
    let h = hunter(&clean_store, &logs, "2024-03-02T01:00:00Z", &sinks);
    hunt_scheduled(&h, &sinks).await;
    let clean: HashSet<String> = read_jsonl(&clean_out).into_iter().map(|f| f.id).collect();
    assert_eq!(clean.len(), 3);

    // A run stopped after staging (nothing delivered, nothing committed); then a later run.
    let out = dir.path().join("out.jsonl");
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(&out).unwrap())];
    let names: Vec<String> = sinks.iter().map(|s| s.name()).collect();
    let stopped = stopped_after_staging(&store, &logs, "2024-03-02T01:00:00Z", &names).await;
    // The first window (up to midnight) was detected and staged, then the run stopped.
    assert_eq!(stopped.len(), 1);
    // The re-run happens later: its window would reach further, but the unfinished window is
    // redone with its original end first.
    let h = hunter(&store, &logs, "2024-03-02T03:00:00Z", &sinks);
    hunt_scheduled(&h, &sinks).await;
    let delivered = read_jsonl(&out);
    let ids: Vec<&str> = delivered.iter().map(|f| f.id.as_str()).collect();
    let unique: HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids.len(), unique.len(), "no finding delivered twice");
    assert_eq!(
        unique, clean,
        "the same findings, under the same ids, as a run with no stop"
    );
}

#[tokio::test]
async fn a_hunt_stopped_after_commit_delivers_its_findings_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    midnight_logs(&logs);
    let out = dir.path().join("out.jsonl");
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(&out).unwrap())];
    let names: Vec<String> = sinks.iter().map(|s| s.name()).collect();
    // Hunt and commit, but stop before delivery.
    let h = Hunter {
        sinks: names,
        ..hunter(&store, &logs, "2024-03-02T01:00:00Z", &[])
    };
    let report = h
        .run_account(
            &AccountId::parse(ACCOUNT).unwrap(),
            Period::Scheduled,
            Mode::Hunt,
        )
        .await
        .unwrap();
    assert_eq!(report.findings.len(), 3);
    assert!(read_jsonl(&out).is_empty());
    // The next run finds nothing new but delivers what was pending.
    let h = hunter(&store, &logs, "2024-03-02T02:00:00Z", &sinks);
    let result = hunt_scheduled(&h, &sinks).await;
    assert_eq!(result.summary.findings_new, 0);
    assert_eq!(read_jsonl(&out).len(), 3);
}
