//! Rules inside the hunt, end to end on the folder source: the shipped pack on the real
//! Invictus logs, new terms against their history in the store, and the imported
//! Elasticsearch-era rules of the seed doing what their descriptions say.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{real_data, run_with_rules, t, user_call, write_object};
use trailhound::alert::{Finding, FindingKind};
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::Span;
use trailhound::config::Config;
use trailhound::detect::rules::RuleSet;
use trailhound::detect::rules_import::{import, render_file};
use trailhound::detect::Mode;
use trailhound::hunt::Period;
use trailhound::window::Window;

fn rule_findings(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.kind == FindingKind::Rule)
        .collect()
}

#[tokio::test]
async fn the_pack_fires_on_the_invictus_attacks_and_not_on_the_background() {
    let logs = real_data().join("invictus-stratus-simulation/CloudTrail");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let rules = Arc::new(RuleSet::shipped().unwrap());
    let mut config = Config::default();
    config.hunt.min_principal_age = Span::ZERO;
    let learn = Window::new(t("2023-07-10T11:40:00Z"), t("2023-07-10T11:54:00Z")).unwrap();
    let hunt = Window::new(t("2023-07-10T11:54:00Z"), t("2023-07-11T00:00:00Z")).unwrap();
    let learned = run_with_rules(
        &config,
        &store,
        &logs,
        Period::Fixed(learn),
        Mode::Learn,
        &[],
        rules.clone(),
    )
    .await;
    assert!(learned.findings.is_empty(), "learning reports nothing");

    let hunted = run_with_rules(
        &config,
        &store,
        &logs,
        Period::Fixed(hunt),
        Mode::Hunt,
        &[],
        rules.clone(),
    )
    .await;
    let fired = rule_findings(&hunted.findings);
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &fired {
        *per_rule.entry(f.rule.as_deref().unwrap()).or_default() += 1;
    }
    eprintln!("invictus, rule findings per rule: {per_rule:?}");
    for f in &fired {
        eprintln!(
            "  {} {} {}",
            f.severity.score,
            f.rule.as_deref().unwrap(),
            f.title
        );
    }

    let has = |rule: &str, pred: &dyn Fn(&Finding) -> bool| {
        fired
            .iter()
            .any(|f| f.rule.as_deref() == Some(rule) && pred(f))
    };
    assert!(has("failed-api-calls", &|f| f.count >= 29
        && f.error_codes.iter().any(
            |c| c.contains("Unauthorized") || c.contains("AccessDenied")
        )));
    assert!(has("secrets-many-reads", &|_| true));
    for name in ["StopLogging", "DeleteTrail", "DeleteFlowLogs"] {
        assert!(
            has("logging-critical-change", &|f| f.event_name.as_deref()
                == Some(name)),
            "{name}"
        );
    }
    assert!(has("ec2-large-instances-one-request", &|_| true));
    assert!(has("console-login-without-mfa", &|_| true));

    // Silent on the background: no rule finding stands only on background events. Except
    // one: at 12:08 bert-jan deletes a log group and the trail, labelled background (the
    // set's tear-down), and deleting logging is what that rule exists to report, whoever does it.
    let labels = common::invictus_labels();
    for f in fired
        .iter()
        .filter(|f| f.rule.as_deref() != Some("logging-critical-change"))
    {
        let all_background = f
            .event_ids
            .iter()
            .all(|id| labels.get(id).is_some_and(|l| l == "background"));
        assert!(
            !all_background,
            "{} fired on background only: {}",
            f.rule.as_deref().unwrap(),
            f.title
        );
    }

    // The same window again: nothing new staged, and what fires again fires under the ids
    // of the first run (the new terms are history now, as first-seen pairs are).
    let again = run_with_rules(
        &config,
        &store,
        &logs,
        Period::Fixed(hunt),
        Mode::Hunt,
        &[],
        rules,
    )
    .await;
    let ids = |fs: &[Finding]| {
        let mut v: Vec<String> = fs
            .iter()
            .filter(|f| f.kind == FindingKind::Rule)
            .map(|f| f.id.clone())
            .collect();
        v.sort();
        v
    };
    let first = ids(&hunted.findings);
    let replayed = ids(&again.findings);
    assert!(replayed.iter().all(|id| first.contains(id)), "{replayed:?}");
    assert_eq!(replayed.len(), first.len() - per_rule_terms(&per_rule));
    assert_eq!(again.summary.findings_new, 0);
}

/// How many findings the new_terms rules of the pack made.
fn per_rule_terms(per_rule: &BTreeMap<&str, usize>) -> usize {
    let terms = RuleSet::shipped().unwrap();
    per_rule
        .iter()
        .filter(|(id, _)| {
            terms.get(id).is_some_and(|r| {
                matches!(r.kind, trailhound::detect::rules::RuleKind::NewTerms { .. })
            })
        })
        .map(|(_, n)| n)
        .sum()
}

const ACCOUNT: &str = "861828696892";

fn record(
    user: &str,
    key: &str,
    source: &str,
    name: &str,
    time: &str,
    id: &str,
) -> serde_json::Value {
    let mut r = user_call(ACCOUNT, user, source, name, time, id);
    r["userIdentity"]["accessKeyId"] = key.into();
    r
}

/// The rules of the seed's three examples, through `rules import`, as a folder.
fn seed_rules(dir: &std::path::Path) -> Arc<RuleSet> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es_rules/dynamodb_scan.json"
    );
    let report = import(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.rules.len(), 3);
    let folder = dir.join("imported");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("imported.toml"), render_file(&report)).unwrap();
    Arc::new(RuleSet::load(false, &[folder]).unwrap())
}

/// The seed's examples as they describe themselves: an access key launching EC2 for the
/// first time in 60 hours, an identity creating an S3 bucket for the first time, a user with
/// at least 3 sign-in failures (its pattern reads `responseElements` as text, as the old
/// index held it).
#[tokio::test]
async fn the_seed_examples_find_what_their_descriptions_say() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let rules = seed_rules(dir.path());
    assert_eq!(rules.enabled().count(), 3);

    let ec2 = "ec2.amazonaws.com";
    let s3 = "s3.amazonaws.com";
    // Learned on day 1: alice's key launches instances; carol creates a bucket.
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        "2024-05-01T10:05:00Z",
        &[
            record(
                "alice",
                "AKIAALICE",
                ec2,
                "RunInstances",
                "2024-05-01T10:01:00Z",
                "e1",
            ),
            record(
                "carol",
                "AKIACAROL",
                s3,
                "CreateBucket",
                "2024-05-01T10:02:00Z",
                "e2",
            ),
        ],
    );
    // Hunted on day 2: alice again (known), bob's key for the first time, a new bucket
    // creator, an AWS service launching (excluded), console sign-in failures.
    let mut service = record("x", "", ec2, "RunInstances", "2024-05-02T10:03:00Z", "e5");
    service["userIdentity"] =
        serde_json::json!({"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"});
    // Sign-in failures in the account the seed's rule names (987654321, as written there):
    // mallory fails 5 times, trent twice (under the rule's minimum of 3), peggy succeeds.
    let mut failures = Vec::new();
    for (user, n, outcome) in [
        ("mallory", 5, "Failure"),
        ("trent", 2, "Failure"),
        ("peggy", 4, "Success"),
    ] {
        for i in 0..n {
            let mut r = record(
                user,
                "",
                "signin.amazonaws.com",
                "ConsoleLogin",
                &format!("2024-05-02T10:1{i}:00Z"),
                &format!("{user}{i}"),
            );
            r["responseElements"] = serde_json::json!({ "ConsoleLogin": outcome });
            r["recipientAccountId"] = "987654321".into();
            failures.push(r);
        }
    }
    let mut day2 = vec![
        record(
            "alice",
            "AKIAALICE",
            ec2,
            "RunInstances",
            "2024-05-02T10:01:00Z",
            "e3",
        ),
        record(
            "bob",
            "AKIABOB",
            ec2,
            "RunInstances",
            "2024-05-02T10:02:00Z",
            "e4",
        ),
        service,
        record(
            "dave",
            "AKIADAVE",
            s3,
            "CreateBucket",
            "2024-05-02T10:04:00Z",
            "e6",
        ),
        record(
            "carol",
            "AKIACAROL",
            s3,
            "CreateBucket",
            "2024-05-02T10:05:00Z",
            "e7",
        ),
    ];
    day2.extend(failures);
    write_object(&logs, ACCOUNT, "us-east-1", "2024-05-02T10:20:00Z", &day2);

    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let config = Config::default();
    let day1 = Window::new(t("2024-05-01T00:00:00Z"), t("2024-05-02T00:00:00Z")).unwrap();
    let day2 = Window::new(t("2024-05-02T00:00:00Z"), t("2024-05-03T00:00:00Z")).unwrap();
    run_with_rules(
        &config,
        &store,
        &logs,
        Period::Fixed(day1),
        Mode::Learn,
        &[],
        rules.clone(),
    )
    .await;
    let hunted = run_with_rules(
        &config,
        &store,
        &logs,
        Period::Fixed(day2),
        Mode::Hunt,
        &[],
        rules,
    )
    .await;
    let mut got: Vec<(String, String)> = rule_findings(&hunted.findings)
        .iter()
        .map(|f| (f.rule.clone().unwrap(), f.principal.key.clone()))
        .collect();
    got.sort();
    let arn = |u: &str| format!("arn:aws:iam::{ACCOUNT}:user/{u}");
    assert_eq!(
        got,
        vec![
            ("failed-user-authentication".to_string(), arn("mallory")),
            ("new-user-created-s3-bucket".to_string(), arn("dave")),
            ("new-users-launching-ec2-instance".to_string(), arn("bob")),
        ],
        "{:#?}",
        hunted.findings
    );
}

const BURST_RULES: &str = r#"
[[rule]]
id = "signin-burst"
title = "Sign-in failures"
severity = "medium"
kind = "threshold"
window = "5m"
min_count = 4
when = { all = [{ field = "eventName", equals = "ConsoleLogin" }, { field = "errorMessage", exists = true }] }

[[rule]]
id = "logging-stopped-daily"
title = "Logging stopped (checked every 2 hours)"
severity = "high"
kind = "match"
every = "2h"
when = { field = "eventName", equals = "StopLogging" }
"#;

fn failed_signin(user: &str, time: &str) -> serde_json::Value {
    let mut r = user_call(
        ACCOUNT,
        user,
        "signin.amazonaws.com",
        "ConsoleLogin",
        time,
        &format!("{user}-{time}"),
    );
    r["errorMessage"] = "Failed authentication".into();
    r
}

/// Hourly scheduled hunts keep each rule's state in the store: a burst split across two
/// hunts is found once, in the second; a reported burst is not reported again by its last
/// records; a rule on a 2-hour schedule reports what happened in between when it is due, and
/// nothing is lost or doubled by running the same hour again.
#[tokio::test]
async fn rule_state_carries_bursts_and_schedules_across_hourly_hunts() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // Hour 10: mallory fails twice just before 11:00 (delivered 10:58); trent fails 4 times
    // at 10:40 (a burst of its own) and once more at 10:58.
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        "2024-05-02T10:58:00Z",
        &[
            failed_signin("mallory", "2024-05-02T10:56:00Z"),
            failed_signin("mallory", "2024-05-02T10:57:00Z"),
            failed_signin("trent", "2024-05-02T10:40:00Z"),
            failed_signin("trent", "2024-05-02T10:40:30Z"),
            failed_signin("trent", "2024-05-02T10:41:00Z"),
            failed_signin("trent", "2024-05-02T10:41:30Z"),
            failed_signin("trent", "2024-05-02T10:57:30Z"),
        ],
    );
    // Hour 11: mallory twice more, one delivered late; trent once more; logging stopped.
    let mut stop = user_call(
        ACCOUNT,
        "mallory",
        "cloudtrail.amazonaws.com",
        "StopLogging",
        "2024-05-02T11:20:00Z",
        "stop-1",
    );
    stop["requestParameters"] = serde_json::json!({"name": "main"});
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        "2024-05-02T11:04:00Z",
        &[
            failed_signin("mallory", "2024-05-02T10:58:30Z"),
            failed_signin("mallory", "2024-05-02T11:00:10Z"),
            failed_signin("trent", "2024-05-02T11:01:00Z"),
            stop,
        ],
    );
    // Hour 12: quiet but for a read, so that the hour is hunted.
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        "2024-05-02T12:30:00Z",
        &[user_call(
            ACCOUNT,
            "alice",
            "s3.amazonaws.com",
            "ListBuckets",
            "2024-05-02T12:29:00Z",
            "read-1",
        )],
    );
    let rules = Arc::new(RuleSet::parse(BURST_RULES, "burst.toml").unwrap());
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut config = Config::default();
    config.hunt.settle = Span::ZERO;
    config.hunt.lookback = Span::hours(1);
    config.hunt.min_principal_age = Span::ZERO;
    let hunt_at = |now: &str| {
        let (config, store, logs, rules) = (&config, &store, &logs, rules.clone());
        let now = t(now);
        async move {
            let result = common::run_with_rules_at(
                config,
                store,
                logs,
                Period::Scheduled,
                Mode::Hunt,
                &[],
                rules,
                now,
            )
            .await;
            assert!(!result.failed(), "{:?}", result.summary.accounts_failed);
            result
        }
    };
    let fired = |r: &trailhound::muster::RunResult| -> Vec<(String, String, String)> {
        rule_findings(&r.findings)
            .iter()
            .map(|f| {
                (
                    f.rule.clone().unwrap(),
                    f.principal.key.rsplit('/').next().unwrap().to_string(),
                    f.first_seen.to_string(),
                )
            })
            .collect()
    };

    let hour10 = hunt_at("2024-05-02T11:00:00Z").await;
    assert_eq!(
        fired(&hour10),
        [(
            "signin-burst".to_string(),
            "trent".to_string(),
            "2024-05-02T10:40:00Z".to_string()
        )],
        "mallory's two failures are not yet a burst"
    );
    assert_eq!(
        hour10.summary.rules.groups_carried, 2,
        "mallory's two and trent's last one"
    );

    let hour11 = hunt_at("2024-05-02T12:00:00Z").await;
    assert_eq!(
        fired(&hour11),
        [(
            "signin-burst".to_string(),
            "mallory".to_string(),
            "2024-05-02T10:56:00Z".to_string()
        )],
        "mallory's burst is found whole; trent's two later failures are not a burst; the \
         2-hour rule is not due"
    );
    let burst = &rule_findings(&hour11.findings)[0];
    assert_eq!(burst.count, 4);
    assert_eq!(hour11.summary.rules.groups_resumed, 2);
    assert_eq!(hour11.summary.rules.rules_deferred, 1);

    let hour12 = hunt_at("2024-05-02T13:00:00Z").await;
    assert_eq!(
        fired(&hour12),
        [(
            "logging-stopped-daily".to_string(),
            "mallory".to_string(),
            "2024-05-02T11:20:00Z".to_string()
        )],
        "the scheduled rule reports the hour it was not due for"
    );

    // The same hour again: the watermark has moved on, nothing is hunted twice.
    let again = hunt_at("2024-05-02T13:00:00Z").await;
    assert!(again.findings.is_empty());

    let states = trailhound::baseline::BaselineStore::rule_states(
        store.as_ref(),
        &trailhound::cloudtrail::AccountId::parse(ACCOUNT).unwrap(),
        &[
            "signin-burst".to_string(),
            "logging-stopped-daily".to_string(),
        ],
    )
    .await
    .unwrap();
    let daily =
        trailhound::detect::rule_state::RuleState::parse(&states["logging-stopped-daily"]).unwrap();
    assert_eq!(daily.last_run.unwrap().to_string(), "2024-05-02T13:00:00Z");
    assert!(
        daily.groups.is_empty(),
        "evaluated, a match rule keeps nothing"
    );
    assert!(daily.last_keys.keys().any(|k| k.ends_with("user/mallory")));
}
