//! Beyond first use of an action: on a generated organisation, a principal's usual action
//! done from a new network with a new client (stolen credentials doing what the victim does)
//! is reported as a new context; the same call from its usual place with its usual client is
//! not reported at all.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use common::{run, t, write_object};
use serde_json::Value;
use trailhound::alert::{Finding, FindingKind};
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::{Principal, Record, Timestamp};
use trailhound::config::Config;
use trailhound::demo::{generate, DemoManifest, DemoOptions};
use trailhound::detect::Mode;
use trailhound::hunt::Period;
use trailhound::window::Window;

const END: &str = "2026-11-02T15:00:00Z";

fn records_under(dir: &Path, out: &mut Vec<Value>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            records_under(&path, out);
        } else if path.to_string_lossy().ends_with(".json.gz")
            && !path.to_string_lossy().contains("Digest")
        {
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            out.extend(body["Records"].as_array().unwrap().iter().cloned());
        }
    }
}

fn key_of(record: &Value) -> Option<String> {
    let text = record.to_string();
    let r = Record::parse(&text).ok()?;
    Principal::of(&r, "").ok().map(|p| p.key)
}

/// A user or role of the routine with habits: active on the most days of the history, from the
/// fewest places; and its last successful call, to copy.
fn habitual(records: &[Value], before: Timestamp, skip: &[String]) -> (String, Value) {
    let mut days: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut places: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for r in records {
        let time = r["eventTime"].as_str().unwrap_or("");
        if time >= before.to_string().as_str() || r.get("errorCode").is_some() {
            continue;
        }
        let Some(key) = key_of(r) else { continue };
        let person_or_workload = key.contains(":user/") || key.contains(":role/");
        if !person_or_workload || key.contains("aws-service-role") || skip.contains(&key) {
            continue;
        }
        days.entry(key.clone())
            .or_default()
            .insert(time[..10].to_string());
        let ip = r["sourceIPAddress"].as_str().unwrap_or("").to_string();
        let agent = r["userAgent"].as_str().unwrap_or("").to_string();
        places.entry(key.clone()).or_default().insert((ip, agent));
        let newer = last
            .get(&key)
            .is_none_or(|l| l["eventTime"].as_str().unwrap_or("") < time);
        if newer {
            last.insert(key, r.clone());
        }
    }
    let key = days
        .iter()
        .filter(|(_, d)| d.len() >= 7)
        .max_by_key(|(k, d)| (d.len(), std::cmp::Reverse(places[*k].len())))
        .map(|(k, _)| k.clone())
        .expect("a principal active on most days");
    let record = last.remove(&key).unwrap();
    (key, record)
}

struct Setup {
    _dir: tempfile::TempDir,
    manifest: DemoManifest,
    store: Arc<SqliteStore>,
    principal: String,
    template: Value,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DemoOptions::new(23, t(END));
    opts.days = 9;
    let manifest = generate(&dir.path().join("logs"), &opts).unwrap();
    let mut records = Vec::new();
    records_under(&manifest.logs_root, &mut records);
    // Not one the demo's own attacks use: they have news of their own.
    let attacked: Vec<String> = manifest
        .injected
        .iter()
        .map(|a| a.principal_key.clone())
        .collect();
    let (principal, template) = habitual(&records, manifest.hunt.0, &attacked);
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    Setup {
        _dir: dir,
        manifest,
        store,
        principal,
        template,
    }
}

/// The template call again, in the hunt hour, with `ip` and `agent`.
fn replay(s: &Setup, ip: &str, agent: &str) {
    let mut call = s.template.clone();
    let at = s.manifest.hunt.0.unix() + 20 * 60;
    call["eventTime"] = Timestamp::from_unix(at).to_string().into();
    call["eventID"] = "c0ffee00-0000-4000-8000-000000000001".into();
    call["sourceIPAddress"] = ip.into();
    call["userAgent"] = agent.into();
    let account = call["recipientAccountId"].as_str().unwrap().to_string();
    let region = call["awsRegion"].as_str().unwrap().to_string();
    write_object(
        &s.manifest.logs_root,
        &account,
        &region,
        &Timestamp::from_unix(at + 180).to_string(),
        &[call],
    );
}

/// Learns `history`, then hunts `hour`: the findings of the hunt.
async fn learn_then_hunt(
    config: &Config,
    store: &Arc<SqliteStore>,
    logs: &Path,
    history: Window,
    hour: Window,
) -> Vec<Finding> {
    run(
        config,
        store,
        logs,
        Period::Fixed(history),
        Mode::Learn,
        &[],
    )
    .await;
    let result = run(config, store, logs, Period::Fixed(hour), Mode::Hunt, &[]).await;
    assert!(!result.failed());
    result.findings
}

async fn hunt(s: &Setup) -> Vec<Finding> {
    let (start, end) = s.manifest.history;
    let history = Window::new(start, end).unwrap();
    let hour = Window::new(s.manifest.hunt.0, s.manifest.hunt.1).unwrap();
    let logs = &s.manifest.logs_root;
    learn_then_hunt(&Config::default(), &s.store, logs, history, hour).await
}

fn about<'f>(findings: &'f [Finding], principal: &str) -> Vec<&'f Finding> {
    findings
        .iter()
        .filter(|f| f.principal.key == principal)
        .collect()
}

#[tokio::test]
async fn usual_actions_from_a_new_network_with_a_new_client_are_a_new_context() {
    let s = setup();
    let family_is_cli = s.template["userAgent"]
        .as_str()
        .unwrap_or("")
        .starts_with("aws-cli");
    let agent = if family_is_cli {
        "Boto3/1.34.11 md/Botocore#1.34.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.6"
    } else {
        "aws-cli/2.15.10 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/s3.ls"
    };
    replay(&s, "203.0.113.77", agent);
    let findings = hunt(&s).await;
    let mine = about(&findings, &s.principal);
    let context: Vec<&&Finding> = mine
        .iter()
        .filter(|f| f.kind == FindingKind::NewContext)
        .collect();
    assert_eq!(
        context.len(),
        1,
        "{}: {:#?}",
        s.principal,
        mine.iter().map(|f| &f.title).collect::<Vec<_>>()
    );
    let f = context[0];
    let factors: Vec<&str> = f
        .severity
        .reasons
        .iter()
        .map(|r| r.factor.as_str())
        .collect();
    for factor in [
        "new-network",
        "new-client",
        "new-network-and-client",
        "new-context",
    ] {
        assert!(factors.contains(&factor), "{factor} in {factors:?}");
    }
    assert!(f.title.contains("203.0.113.0/24"), "{}", f.title);
    assert!(
        !mine.iter().any(|f| f.kind == FindingKind::NewAction
            && f.event_name.as_deref() == s.template["eventName"].as_str()),
        "the action itself is known: not a new action"
    );
    eprintln!(
        "new context for {}: {} ({:?}), score {}",
        s.principal, f.title, f.severity.level, f.severity.score
    );
}

#[tokio::test]
async fn usual_actions_from_the_usual_place_are_not_reported() {
    let s = setup();
    let ip = s.template["sourceIPAddress"].as_str().unwrap().to_string();
    let agent = s.template["userAgent"].as_str().unwrap().to_string();
    replay(&s, &ip, &agent);
    let findings = hunt(&s).await;
    let mine = about(&findings, &s.principal);
    assert!(
        !mine.iter().any(|f| f.kind == FindingKind::NewContext
            || f.event_name.as_deref() == s.template["eventName"].as_str()),
        "{:#?}",
        mine.iter().map(|f| &f.title).collect::<Vec<_>>()
    );
}

const ACCOUNT: &str = "111122223333";

fn call_at(user: &str, source: &str, name: &str, time: Timestamp, ip: &str, agent: &str) -> Value {
    let mut r = common::user_call(
        ACCOUNT,
        user,
        source,
        name,
        &time.to_string(),
        &format!("{user}-{name}-{}", time.unix()),
    );
    r["sourceIPAddress"] = ip.into();
    r["userAgent"] = agent.into();
    r
}

const CLI: &str = "aws-cli/2.13.0 Python/3.11.4 Linux/5.15 exe/x86_64.ubuntu.22";
const CONSOLE: &str = "AWS Internal";

/// A history of `days` days (one object a day at noon) and the hunt hour after it: carol
/// lists buckets every day from 198.51.100.7 with the CLI and described instances once, on the
/// first day.
fn history(root: &Path, days: i64, hunt: Timestamp) -> Window {
    let start = hunt.saturating_sub(trailhound::cloudtrail::Span::days(days));
    for d in 0..days {
        let noon = Timestamp::from_unix(start.unix() + d * 86_400 + 12 * 3600);
        let mut records = vec![call_at(
            "carol",
            "s3.amazonaws.com",
            "ListBuckets",
            noon,
            "198.51.100.7",
            CLI,
        )];
        if d == 0 {
            records.push(call_at(
                "carol",
                "ec2.amazonaws.com",
                "DescribeInstances",
                noon,
                "198.51.100.7",
                CLI,
            ));
        }
        write_object(
            root,
            ACCOUNT,
            "us-east-1",
            &Timestamp::from_unix(noon.unix() + 300).to_string(),
            &records,
        );
    }
    Window::new(start, hunt).unwrap()
}

/// A rarely used action coming back after a long silence from somewhere new is graded with
/// its tier and its dormancy; a young principal doing what nobody in the account did is
/// reported although it is younger than min_principal_age, and what its peers do is not.
#[tokio::test]
async fn rarity_dormancy_and_peers_are_named_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let hunt_start = t("2024-06-01T10:00:00Z");
    let learned = history(&logs, 45, hunt_start);
    let at = |minute: i64| Timestamp::from_unix(hunt_start.unix() + minute * 60);
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        &at(30).to_string(),
        &[
            // carol, from a new network with a new client, in a new region.
            call_at(
                "carol",
                "ec2.amazonaws.com",
                "DescribeInstances",
                at(10),
                "203.0.113.9",
                CONSOLE,
            ),
            call_at(
                "carol",
                "s3.amazonaws.com",
                "ListBuckets",
                at(11),
                "203.0.113.9",
                CONSOLE,
            ),
            // dave, brand new: what carol does, and what nobody does.
            call_at(
                "dave",
                "s3.amazonaws.com",
                "ListBuckets",
                at(12),
                "198.51.100.8",
                CLI,
            ),
            call_at(
                "dave",
                "ssm.amazonaws.com",
                "StartSession",
                at(13),
                "198.51.100.8",
                CLI,
            ),
        ],
    );
    let mut eu = call_at(
        "carol",
        "s3.amazonaws.com",
        "ListBuckets",
        at(12),
        "203.0.113.9",
        CONSOLE,
    );
    eu["awsRegion"] = "eu-north-1".into();
    write_object(&logs, ACCOUNT, "eu-north-1", &at(30).to_string(), &[eu]);

    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let config = Config::default();
    let hour = Window::new(hunt_start, at(60)).unwrap();
    let findings = learn_then_hunt(&config, &store, &logs, learned, hour).await;

    let carol = about(&findings, &format!("arn:aws:iam::{ACCOUNT}:user/carol"));
    let context: Vec<&&Finding> = carol
        .iter()
        .filter(|f| f.kind == FindingKind::NewContext)
        .collect();
    assert_eq!(context.len(), 1, "{carol:#?}");
    let reasons = &context[0].severity.reasons;
    let reason = |factor: &str| {
        reasons
            .iter()
            .find(|r| r.factor == factor)
            .unwrap_or_else(|| panic!("{factor} in {reasons:#?}"))
    };
    assert!(reason("new-region").detail.contains("eu-north-1"));
    assert!(reason("rarity:RARE")
        .detail
        .contains("ec2:DescribeInstances is RARE for this principal: used on 1 of 45 days"));
    assert!(reason("dormant-action")
        .detail
        .contains("ec2:DescribeInstances came back after 44 days"));

    let dave = about(&findings, &format!("arn:aws:iam::{ACCOUNT}:user/dave"));
    let titles: Vec<&str> = dave.iter().map(|f| f.title.as_str()).collect();
    assert!(
        titles.iter().any(|t| t.contains("ssm:StartSession")),
        "{titles:?}"
    );
    assert!(
        !dave
            .iter()
            .any(|f| f.kind == FindingKind::NewAction && f.title.contains("s3:ListBuckets")),
        "what peers do is not a new action of a young principal: {titles:?}"
    );
    let start = dave
        .iter()
        .find(|f| f.title.contains("ssm:StartSession"))
        .unwrap();
    let peer = start
        .severity
        .reasons
        .iter()
        .find(|r| r.factor == "rarity:UNSEEN")
        .unwrap();
    assert_eq!(peer.weight, config.severity.peer_unseen);
    assert!(
        peer.detail.contains("the account's principals"),
        "{}",
        peer.detail
    );
}

/// The Invictus set: the instance role whose credentials are used at 11:57:22 from another
/// network with another client is among the highest findings of the hunt, as a new context
/// with the instance-credentials factor; the background of the set's other principals stays
/// below medium. (The operator's own set-up and tear-down calls, also labelled background,
/// are first-time calls of the attacking user and rank with it.)
#[tokio::test]
async fn invictus_stolen_instance_credentials_rank_among_the_highest() {
    let logs = common::real_data().join("invictus-stratus-simulation/CloudTrail");
    let labels = common::invictus_labels();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut config = Config::default();
    config.hunt.min_principal_age = trailhound::cloudtrail::Span::ZERO;
    let learn = Window::new(t("2023-07-10T11:40:00Z"), t("2023-07-10T11:54:00Z")).unwrap();
    let hunt = Window::new(t("2023-07-10T11:54:00Z"), t("2023-07-11T00:00:00Z")).unwrap();
    let mut findings = learn_then_hunt(&config, &store, &logs, learn, hunt).await;
    findings.sort_by(|a, b| {
        b.severity
            .score
            .cmp(&a.severity.score)
            .then(a.first_seen.cmp(&b.first_seen))
    });
    let rank = findings
        .iter()
        .position(|f| {
            f.kind == FindingKind::NewContext
                && f.principal
                    .key
                    .ends_with(":role/stratus-red-team-ec2-steal-credentials-role")
        })
        .expect("a new-context finding for the instance role");
    let stolen = &findings[rank];
    eprintln!(
        "instance role: rank {} of {}, score {}: {}",
        rank + 1,
        findings.len(),
        stolen.severity.score,
        stolen.title
    );
    assert_eq!(stolen.first_seen.to_string(), "2023-07-10T11:57:22Z");
    assert!(
        stolen
            .severity
            .reasons
            .iter()
            .any(|r| r.factor == "workload-credentials-elsewhere"),
        "{:#?}",
        stolen.severity
    );
    assert!(
        rank < findings.len() / 10,
        "rank {} of {}",
        rank + 1,
        findings.len()
    );
    // Findings whose events are all background of principals other than the operator.
    let operator = "arn:aws:iam::123837392027:user/bert-jan";
    let background: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.principal.key != operator
                && !f.event_ids.is_empty()
                && f.event_ids
                    .iter()
                    .all(|id| labels.get(id).is_some_and(|label| label == "background"))
        })
        .collect();
    assert!(!background.is_empty());
    for f in &background {
        assert!(
            f.severity.score < config.severity.levels.medium as u8,
            "{} scored {}: {:#?}",
            f.title,
            f.severity.score,
            f.severity.reasons
        );
    }
    eprintln!(
        "background findings of other principals: {}, all below medium",
        background.len()
    );
}

fn role_call(account: &str, role: &str, name: &str, time: Timestamp) -> Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLE:{role}-session"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{role}-session"),
            "accountId": account,
            "sessionContext": {"sessionIssuer": {
                "type": "Role", "principalId": "AROAEXAMPLE",
                "arn": format!("arn:aws:iam::{account}:role/{role}"),
                "accountId": account, "userName": role
            }}
        },
        "eventTime": time.to_string(),
        "eventSource": "ecr.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "52.30.4.237",
        "userAgent": CLI,
        "eventID": format!("{account}-{role}-{name}-{}", time.unix()),
        "recipientAccountId": account,
    })
}

/// A role deployed under one name in every account is judged, while young in a new account,
/// by what roles of its name do across the organisation: its usual call is not reported, a
/// call no role of its name and nobody in its account ever made is.
#[tokio::test]
async fn a_young_role_is_judged_by_roles_of_its_name_in_other_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let (old, new) = ("111122223333", "444455556666");
    let hunt_start = t("2024-06-01T10:00:00Z");
    let days = 10;
    let start = hunt_start.saturating_sub(trailhound::cloudtrail::Span::days(days));
    for d in 0..days {
        let noon = Timestamp::from_unix(start.unix() + d * 86_400 + 12 * 3600);
        let delivered = Timestamp::from_unix(noon.unix() + 300).to_string();
        write_object(
            &logs,
            old,
            "us-east-1",
            &delivered,
            &[role_call(old, "deploy", "CreateRepository", noon)],
        );
        // The new account has history of its own, from someone else.
        let mut other = call_at(
            "erin",
            "s3.amazonaws.com",
            "ListBuckets",
            noon,
            "198.51.100.7",
            CLI,
        );
        other["recipientAccountId"] = new.into();
        other["userIdentity"]["arn"] = format!("arn:aws:iam::{new}:user/erin").into();
        other["userIdentity"]["accountId"] = new.into();
        write_object(&logs, new, "us-east-1", &delivered, &[other]);
    }
    let at = |minute: i64| Timestamp::from_unix(hunt_start.unix() + minute * 60);
    write_object(
        &logs,
        new,
        "us-east-1",
        &at(30).to_string(),
        &[
            role_call(new, "deploy", "CreateRepository", at(10)),
            role_call(new, "deploy", "DeleteRepository", at(11)),
        ],
    );
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let config = Config::default();
    let history = Window::new(start, hunt_start).unwrap();
    let hour = Window::new(hunt_start, at(60)).unwrap();
    let findings = learn_then_hunt(&config, &store, &logs, history, hour).await;
    let deploy = about(&findings, &format!("arn:aws:iam::{new}:role/deploy"));
    let actions: Vec<&str> = deploy
        .iter()
        .filter(|f| f.kind == FindingKind::NewAction)
        .filter_map(|f| f.action.as_deref())
        .collect();
    assert_eq!(actions, ["ecr:DeleteRepository"], "{deploy:#?}");
    let delete = deploy
        .iter()
        .find(|f| f.kind == FindingKind::NewAction)
        .unwrap();
    let unseen = delete
        .severity
        .reasons
        .iter()
        .find(|r| r.factor == "rarity:UNSEEN")
        .unwrap();
    assert!(
        unseen.detail.contains("the account's principals"),
        "{}",
        unseen.detail
    );
}

/// A Lambda function's role, whose calls come from the Lambda runtime, used from a laptop:
/// its usual call from a new network with a new client is a new context with the workload
/// factor.
#[tokio::test]
async fn a_lambda_roles_credentials_used_elsewhere_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let hunt_start = t("2024-06-01T10:00:00Z");
    let days = 10;
    let start = hunt_start.saturating_sub(trailhound::cloudtrail::Span::days(days));
    let runtime = "aws-sdk-js/3.692.0 ua/2.1 os/linux lang/js md/nodejs#20.18.0 \
                   exec-env/AWS_Lambda_nodejs20.x api/ecr#3.692.0";
    let lambda_call = |time: Timestamp, ip: &str, agent: &str| {
        let mut r = role_call(ACCOUNT, "image-resize-role", "DescribeRepositories", time);
        r["sourceIPAddress"] = ip.into();
        r["userAgent"] = agent.into();
        r
    };
    for d in 0..days {
        let noon = Timestamp::from_unix(start.unix() + d * 86_400 + 12 * 3600);
        let delivered = Timestamp::from_unix(noon.unix() + 300).to_string();
        let call = lambda_call(noon, "44.234.17.205", runtime);
        write_object(&logs, ACCOUNT, "us-east-1", &delivered, &[call]);
    }
    let at = Timestamp::from_unix(hunt_start.unix() + 600);
    let stolen = lambda_call(at, "203.0.113.5", CLI);
    let delivered = Timestamp::from_unix(at.unix() + 300).to_string();
    write_object(&logs, ACCOUNT, "us-east-1", &delivered, &[stolen]);

    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let history = Window::new(start, hunt_start).unwrap();
    let hour = Window::new(hunt_start, Timestamp::from_unix(hunt_start.unix() + 3600)).unwrap();
    let findings = learn_then_hunt(&Config::default(), &store, &logs, history, hour).await;
    let role = about(
        &findings,
        &format!("arn:aws:iam::{ACCOUNT}:role/image-resize-role"),
    );
    assert_eq!(role.len(), 1, "{role:#?}");
    assert_eq!(role[0].kind, FindingKind::NewContext);
    let workload = role[0]
        .severity
        .reasons
        .iter()
        .find(|r| r.factor == "workload-credentials-elsewhere")
        .unwrap_or_else(|| panic!("{:#?}", role[0].severity));
    assert!(workload.detail.contains("Lambda"), "{}", workload.detail);
    eprintln!(
        "lambda role used elsewhere: {} ({:?}, {})",
        role[0].title, role[0].severity.level, role[0].severity.score
    );
}
