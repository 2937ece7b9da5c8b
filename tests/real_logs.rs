//! Behaviour on the real, public CloudTrail samples (see ../shared/data/cloudtrail/README.md).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use common::{real_data, run, t};
use trailhound::alert::{Finding, FindingKind, JsonlSink, Sink};
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::Config;
use trailhound::detect::Mode;
use trailhound::hunt::Period;
use trailhound::source::scan::FolderSource;
use trailhound::source::ActivitySource;
use trailhound::window::Window;

fn everything() -> Window {
    Window::new(t("2000-01-01T00:00:00Z"), t("2100-01-01T00:00:00Z")).unwrap()
}

/// Counts records independently of trailhound: distinct eventIDs per file set.
fn distinct_event_ids(folder: &std::path::Path) -> usize {
    let mut ids = HashSet::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(value) =
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap())
            else {
                continue;
            };
            let records = match &value {
                serde_json::Value::Object(o) if o.contains_key("Records") => {
                    o["Records"].as_array().cloned().unwrap_or_default()
                }
                serde_json::Value::Object(_) => vec![value.clone()],
                serde_json::Value::Array(a) => a.clone(),
                _ => vec![],
            };
            for r in records {
                if let Some(id) = r.get("eventID").and_then(|v| v.as_str()) {
                    ids.insert(id.to_string());
                }
            }
        }
    }
    ids.len()
}

#[tokio::test]
async fn every_real_record_yields_a_principal_or_a_counted_reason() {
    let root = real_data();
    for set in [
        "invictus-stratus-simulation",
        "stratus-detonations",
        "traildiscover-examples",
    ] {
        let folder = root.join(set);
        let source = FolderSource::open(&folder).unwrap();
        let accounts = source.accounts().await.unwrap();
        assert!(!accounts.is_empty(), "{set}: no accounts found");
        let mut used = 0u64;
        let mut no_principal: BTreeMap<String, u64> = BTreeMap::new();
        let mut bad: BTreeMap<String, u64> = BTreeMap::new();
        let mut rows = 0usize;
        for account in &accounts {
            let batch = source.activity(account, &everything()).await.unwrap();
            used += batch.report.records_used();
            for (k, v) in batch.report.records_no_principal {
                *no_principal.entry(k).or_default() += v;
            }
            for (k, v) in batch.report.records_bad {
                *bad.entry(k).or_default() += v;
            }
            rows += batch.rows.len();
            for row in &batch.rows {
                assert!(!row.principal.key.is_empty());
            }
        }
        let without: u64 = no_principal.values().sum();
        let expected = distinct_event_ids(&folder) as u64;
        assert!(bad.is_empty(), "{set}: undecodable records {bad:?}");
        assert_eq!(
            used + without,
            expected,
            "{set}: every distinct record is used or counted ({no_principal:?})"
        );
        // Only records with no identity at all may lack a principal, and they are rare.
        assert!(
            without * 100 <= expected,
            "{set}: {without} of {expected} records without principal: {no_principal:?}"
        );
        assert!(rows > 0);
    }
}

#[tokio::test]
async fn duplicate_deliveries_are_counted_once() {
    let folder = real_data().join("traildiscover-examples");
    let source = FolderSource::open(&folder).unwrap();
    let mut duplicates = 0;
    for account in source.accounts().await.unwrap() {
        duplicates += source
            .activity(&account, &everything())
            .await
            .unwrap()
            .report
            .records_duplicate;
    }
    // 563 records, 314 distinct eventIDs (README of the samples).
    assert!(
        duplicates > 0,
        "the samples repeat eventIDs; none were found as duplicates"
    );
}

#[tokio::test]
async fn non_log_files_are_counted_not_read() {
    let folder = real_data().join("traildiscover-examples");
    let source = FolderSource::open(&folder).unwrap();
    let account = source.accounts().await.unwrap()[0].clone();
    let report = source
        .activity(&account, &everything())
        .await
        .unwrap()
        .report;
    assert!(
        report.files_not_logs >= 2,
        "index.html and script.js are not logs: {report:?}"
    );
}

fn is(f: &Finding, action: &str) -> bool {
    f.action.as_deref() == Some(action)
}

/// The scenario of the issue: learn the quiet start, hunt the rest, with young principals alerted.
#[tokio::test]
async fn invictus_attacks_rank_above_the_background() {
    let logs = real_data().join("invictus-stratus-simulation/CloudTrail");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut config = Config::default();
    config.hunt.min_principal_age = Span::ZERO;

    let learn = Window::new(t("2023-07-10T11:40:00Z"), t("2023-07-10T11:54:00Z")).unwrap();
    let learned = run(
        &config,
        &store,
        &logs,
        Period::Fixed(learn),
        Mode::Learn,
        &[],
    )
    .await;
    assert!(learned.findings.is_empty(), "learning reports nothing");
    assert!(learned.summary.pairs_learned > 0);

    let out = dir.path().join("findings.jsonl");
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(&out).unwrap())];
    let hunted = run(
        &config,
        &store,
        &logs,
        Period::Scheduled,
        Mode::Hunt,
        &sinks,
    )
    .await;
    let findings = &hunted.findings;
    assert!(!findings.is_empty());

    let mut scores: Vec<u8> = findings.iter().map(|f| f.severity.score).collect();
    scores.sort();
    let median = scores[scores.len() / 2];
    let expect = |what: &str, pred: &dyn Fn(&Finding) -> bool| {
        let f = findings
            .iter()
            .filter(|f| pred(f))
            .max_by_key(|f| f.severity.score)
            .unwrap_or_else(|| panic!("no finding for {what}"));
        assert!(
            f.severity.score > median,
            "{what} scored {} (median {median}): {:#?}",
            f.severity.score,
            f.severity
        );
        f
    };
    let stolen = expect("stolen instance credentials", &|f| {
        f.principal
            .key
            .ends_with(":role/stratus-red-team-ec2-steal-credentials-role")
            && is(f, "sts:GetCallerIdentity")
    });
    assert!(
        stolen
            .severity
            .reasons
            .iter()
            .any(|r| r.factor == "new-network"),
        "{:#?}",
        stolen.severity
    );
    expect("console login of a new user", &|f| {
        is(f, "signin:ConsoleLogin")
    });
    expect("CreateAccessKey", &|f| is(f, "iam:CreateAccessKey"));
    expect("CreateUser", &|f| is(f, "iam:CreateUser"));
    expect("AttachUserPolicy", &|f| is(f, "iam:AttachUserPolicy"));
    expect("StopLogging", &|f| is(f, "cloudtrail:StopLogging"));
    expect("DeleteTrail", &|f| is(f, "cloudtrail:DeleteTrail"));
    expect("DeleteFlowLogs", &|f| is(f, "ec2:DeleteFlowLogs"));
    // The burst of denied GetPasswordData calls is its own kind.
    assert!(findings
        .iter()
        .any(|f| f.kind == FindingKind::NewDeniedAction && is(f, "ec2:GetPasswordData")));

    // Everything produced was delivered, once.
    let lines = std::fs::read_to_string(&out).unwrap();
    let ids: Vec<&str> = lines.lines().collect();
    assert_eq!(ids.len(), findings.len());

    // Hunting the same period again gives nothing new.
    let window = Window::new(t("2023-07-10T11:54:00Z"), t("2023-07-10T13:00:00Z")).unwrap();
    let again = run(
        &config,
        &store,
        &logs,
        Period::Fixed(window),
        Mode::Hunt,
        &sinks,
    )
    .await;
    assert_eq!(
        again.summary.findings_new,
        0,
        "{:#?}",
        again.findings.iter().map(|f| &f.title).collect::<Vec<_>>()
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        findings.len()
    );
    let _ = AccountId::parse("218007301253").unwrap();
}
