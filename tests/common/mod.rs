//! Shared helpers of the integration tests: where the real CloudTrail samples are, and a
//! one-call run of the library over a folder.

#![allow(dead_code)]

pub mod hec;

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

/// eventID → label (`background`, `malicious-detonation`, ...), from the Invictus set's
/// labels.csv.
pub fn invictus_labels() -> std::collections::HashMap<String, String> {
    let path = real_data().join("invictus-stratus-simulation/labels.csv");
    let mut reader = csv::Reader::from_path(path).expect("labels.csv opens");
    reader
        .records()
        .map(|r| {
            let r = r.expect("a labels.csv row");
            (r[0].to_string(), r[7].to_string())
        })
        .collect()
}

/// One run of the library with `rules` besides first-seen detection: the folder source keeps
/// the records they want, as the binary's does.
pub async fn run_with_rules(
    config: &Config,
    store: &Arc<SqliteStore>,
    logs: &std::path::Path,
    period: Period,
    mode: Mode,
    sinks: &[Box<dyn Sink>],
    rules: Arc<trailhound::detect::rules::RuleSet>,
) -> RunResult {
    run_with_rules_at(
        config,
        store,
        logs,
        period,
        mode,
        sinks,
        rules,
        Timestamp::now(),
    )
    .await
}

/// [`run_with_rules`] as if it ran at `now`: a scheduled hunt covers up to `now` minus the
/// settle time.
#[allow(clippy::too_many_arguments)]
pub async fn run_with_rules_at(
    config: &Config,
    store: &Arc<SqliteStore>,
    logs: &std::path::Path,
    period: Period,
    mode: Mode,
    sinks: &[Box<dyn Sink>],
    rules: Arc<trailhound::detect::rules::RuleSet>,
    now: Timestamp,
) -> RunResult {
    let engine = Arc::new(trailhound::detect::rules::RuleEngine::new(&rules));
    let source = Arc::new(
        FolderSource::open(logs)
            .expect("logs folder opens")
            .with_rules(engine),
    );
    let accounts = source.accounts().await.expect("accounts");
    let hunter = Hunter {
        config: Arc::new(config.clone()),
        store: store.clone(),
        source,
        sinks: sinks.iter().map(|s| s.name()).collect(),
        now,
        rules,
    };
    muster::run(&hunter, accounts, period, mode, 2, sinks)
        .await
        .expect("run completes")
}

/// One run of the library: every account of `logs`, over `period`, without rules.
pub async fn run(
    config: &Config,
    store: &Arc<SqliteStore>,
    logs: &std::path::Path,
    period: Period,
    mode: Mode,
    sinks: &[Box<dyn Sink>],
) -> RunResult {
    run_with_rules(config, store, logs, period, mode, sinks, Default::default()).await
}

pub fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("test timestamp")
}

/// Writes one CloudTrail object in the S3 layout, gzip, delivered at `delivered`.
pub fn write_object(
    root: &std::path::Path,
    account: &str,
    region: &str,
    delivered: &str,
    records: &[serde_json::Value],
) -> PathBuf {
    use std::io::Write;
    use trailhound::cloudtrail::layout::{day_prefix, object_file_name};
    use trailhound::cloudtrail::{AccountId, Region};
    let a = AccountId::parse(account).unwrap();
    let r = Region::parse(region).unwrap();
    let at = t(delivered);
    let folder = root.join(day_prefix(None, &a, &r, at));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(object_file_name(&a, &r, at, &format!("r{}", at.unix())));
    let body = serde_json::json!({ "Records": records }).to_string();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body.as_bytes()).unwrap();
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    path
}

/// A CloudTrail record of an IAM user's call.
pub fn user_call(
    account: &str,
    user: &str,
    source: &str,
    name: &str,
    time: &str,
    id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": format!("arn:aws:iam::{account}:user/{user}"),
            "accountId": account,
            "userName": user
        },
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.13.0 Python/3.11.4",
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "recipientAccountId": account
    })
}

/// An object written by [`objects_at`].
pub struct Placed {
    /// Its path under the root, with `/` separators: the S3 key under the bucket.
    pub key: String,
    pub account: String,
    pub region: String,
    pub delivered: Timestamp,
    pub event_id: String,
}

/// Writes one object per account, region and delivery minute (`minutes` as RFC 3339), each
/// holding one call whose action and eventID name the object: for tests of which objects a
/// window chooses, where a missing or extra object must show in the result.
pub fn objects_at(
    root: &std::path::Path,
    accounts: &[&str],
    regions: &[&str],
    minutes: &[&str],
) -> Vec<Placed> {
    let mut placed = Vec::new();
    for account in accounts {
        for region in regions {
            for minute in minutes {
                let delivered = t(minute);
                let stamp = delivered.compact();
                let event_id = format!("{account}-{region}-{stamp}");
                let time = delivered.saturating_sub(trailhound::cloudtrail::Span::minutes(3));
                let mut call = user_call(
                    account,
                    region,
                    "iam.amazonaws.com",
                    &format!("Get{stamp}"),
                    &time.to_string(),
                    &event_id,
                );
                call["awsRegion"] = serde_json::json!(region);
                let path = write_object(root, account, region, minute, &[call]);
                let key = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                placed.push(Placed {
                    key,
                    account: account.to_string(),
                    region: region.to_string(),
                    delivered,
                    event_id,
                });
            }
        }
    }
    placed
}
