//! A whole hunt with DynamoDB as the store: learn an hour, hunt an hour of the same behaviour
//! (the steady-state cost the design promises), then two hunts of one account at once that
//! find one new behaviour between them once.

use std::sync::Arc;

use trailhound::alert::{Finding, JsonlSink, Sink};
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::{BaselineStore, StoreCounters};
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::Config;
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster;
use trailhound::source::scan::FolderSource;

use super::common::{t, user_call, write_object};
use super::fresh;

const ACCOUNT: &str = "111122223333";
const USERS: usize = 25;
const ACTIONS: usize = 80;
const SERVICES: [&str; 10] = [
    "s3", "ec2", "iam", "sts", "kms", "lambda", "dynamodb", "logs", "sqs", "sns",
];

/// One hour of routine: every user does each of its actions once, one object per user.
fn routine_hour(root: &std::path::Path, hour: &str) {
    for u in 0..USERS {
        let delivered = format!("{hour}:{:02}:00Z", 5 + 2 * u);
        let happened = format!("{hour}:{:02}:30Z", 3 + 2 * u);
        let records: Vec<_> = (0..ACTIONS)
            .map(|a| {
                let source = format!("{}.amazonaws.com", SERVICES[a % SERVICES.len()]);
                let name = format!("Describe{a}");
                let id = format!("{hour}-u{u}-a{a}");
                user_call(
                    ACCOUNT,
                    &format!("user{u:02}"),
                    &source,
                    &name,
                    &happened,
                    &id,
                )
            })
            .collect();
        write_object(root, ACCOUNT, "us-east-1", &delivered, &records);
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.hunt.min_principal_age = Span::ZERO;
    c.hunt.lookback = Span::hours(2);
    c
}

fn hunter(store: &Arc<DynamoStore>, logs: &std::path::Path, now: &str, sinks: &[String]) -> Hunter {
    Hunter {
        config: Arc::new(config()),
        store: store.clone(),
        source: Arc::new(FolderSource::open(logs).expect("the logs folder opens")),
        sinks: sinks.to_vec(),
        now: t(now),
        rules: Default::default(),
    }
}

fn spent(before: StoreCounters, after: StoreCounters) -> StoreCounters {
    StoreCounters {
        calls: after.calls - before.calls,
        read_units: after.read_units - before.read_units,
        write_units: after.write_units - before.write_units,
    }
}

#[tokio::test]
async fn a_hunt_on_dynamodb_costs_at_most_one_call_per_50_pairs_in_steady_state() {
    let (store, client) = fresh("hunt").await;
    let store = Arc::new(store);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    routine_hour(&logs, "2024-05-01T10");
    routine_hour(&logs, "2024-05-01T11");
    let out = dir.path().join("alerts.jsonl");
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(&out).unwrap())];
    let names: Vec<String> = sinks.iter().map(|s| s.name()).collect();
    let account = AccountId::parse(ACCOUNT).unwrap();
    let pairs = USERS * ACTIONS;

    // Hour 1: onboarding learns the account.
    let before = store.counters();
    let h = hunter(&store, &logs, "2024-05-01T11:10:00Z", &names);
    let first = muster::run(
        &h,
        vec![account.clone()],
        Period::Scheduled,
        Mode::Learn,
        1,
        &sinks,
    )
    .await
    .unwrap();
    let hour1 = spent(before, store.counters());
    assert!(!first.failed(), "{:?}", first.summary.accounts_failed);
    assert!(first.summary.pairs_learned >= pairs as u64);

    // Hour 2: the same behaviour again. Nothing is new, nothing is written but the cursor.
    let before = store.counters();
    let h = hunter(&store, &logs, "2024-05-01T12:10:00Z", &names);
    let second = muster::run(
        &h,
        vec![account.clone()],
        Period::Scheduled,
        Mode::Hunt,
        1,
        &sinks,
    )
    .await
    .unwrap();
    let hour2 = spent(before, store.counters());
    assert!(!second.failed(), "{:?}", second.summary.accounts_failed);
    assert_eq!(second.summary.windows, 1);
    assert!(second.findings.is_empty(), "{:?}", second.findings);
    assert_eq!(second.summary.pairs_learned, 0);

    eprintln!(
        "DynamoDB cost, {pairs} distinct (principal, action) pairs of {USERS} principals:\n  \
         hour 1 (learn): {} calls, {:.1} read units, {:.1} write units\n  \
         hour 2 (hunt, same behaviour): {} calls, {:.1} read units, {:.1} write units",
        hour1.calls,
        hour1.read_units,
        hour1.write_units,
        hour2.calls,
        hour2.read_units,
        hour2.write_units
    );
    assert!(
        hour2.calls * 50 <= pairs as u64,
        "steady state made {} calls for {pairs} pairs, more than one per 50",
        hour2.calls
    );
    // The cursor is written twice (the window starts, the watermark moves); no pair is.
    assert!(
        hour2.write_units <= 2.0,
        "steady state wrote {} units",
        hour2.write_units
    );

    // Hour 3: one user does one thing it never did, and two hunts of the account run at once,
    // each with its own store as two processes would.
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        "2024-05-01T12:20:00Z",
        &[user_call(
            ACCOUNT,
            "user07",
            "s3.amazonaws.com",
            "PutBucketPolicy",
            "2024-05-01T12:17:00Z",
            "new-1",
        )],
    );
    let other = Arc::new(DynamoStore::new(client.clone(), store.table()));
    let (a, b) = (
        hunter(&store, &logs, "2024-05-01T13:10:00Z", &names),
        hunter(&other, &logs, "2024-05-01T13:10:00Z", &names),
    );
    let (ra, rb) = tokio::join!(
        a.run_account(&account, Period::Scheduled, Mode::Hunt),
        b.run_account(&account, Period::Scheduled, Mode::Hunt)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.findings.len() + rb.findings.len(),
        2,
        "both hunts see the new behaviour"
    );
    assert_eq!(
        ra.findings_new + rb.findings_new,
        1,
        "and it is staged once"
    );

    // The next run delivers it, once.
    let h = hunter(&store, &logs, "2024-05-01T13:10:00Z", &names);
    let third = muster::run(
        &h,
        vec![account.clone()],
        Period::Scheduled,
        Mode::Hunt,
        1,
        &sinks,
    )
    .await
    .unwrap();
    assert!(!third.failed(), "{:?}", third.sink_failures);
    let delivered: Vec<Finding> = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a finding per line"))
        .collect();
    let actions: Vec<Option<&str>> = delivered.iter().map(|f| f.action.as_deref()).collect();
    assert_eq!(actions, [Some("s3:PutBucketPolicy")]);
    assert!(store.pending(&names[0], 10).await.unwrap().is_empty());
    let cursor = store.cursor(&account).await.unwrap();
    assert_eq!(cursor.watermark, Some(t("2024-05-01T13:00:00Z")));
    assert_eq!(cursor.pending_end, None);
}
