//! Faults of Athena under a whole hunt: the organization's activity comes from Athena through
//! the fault proxy, each query answered with the rows DuckDB computes for its SQL.

use std::sync::Arc;
use std::time::Duration;

use trailhound::alert::Finding;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::config::{AthenaConfig, PartitionMode, TrailConfig};
use trailhound::source::athena::{AthenaSource, QueryPolicy, ResultTable, SqlSettings};

use super::org::{self, Outcome};
use super::proxy::{Proxy, Reply};
use super::support::{self, quick, registration, table_ddl};
use super::{duckdb, moto};

/// The region of these tests' Athena results in the emulator (one queue per region).
const REGION: &str = "eu-south-1";

fn trail() -> TrailConfig {
    support::trail("trailhound-faults", None, &org::REGIONS.map(String::from))
}

fn athena() -> AthenaConfig {
    support::athena(PartitionMode::Projection)
}

/// Every activity query of a first hunt at [`org::NOW`], with the rows DuckDB gives for it.
fn expected() -> &'static [(String, ResultTable)] {
    static EXPECTED: std::sync::OnceLock<Vec<(String, ResultTable)>> = std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| {
        let sql = SqlSettings::new(&trail(), &athena()).unwrap();
        let mut queries = Vec::new();
        for account in org::accounts() {
            for window in org::windows() {
                queries.push(sql.activity(&account, &window).unwrap());
            }
        }
        let tables = duckdb::run(org::logs(), &table_ddl(&trail(), &athena()), &queries);
        queries.into_iter().zip(tables).collect()
    })
}

/// A proxy in front of the emulator that hands each activity query its own rows.
async fn proxy() -> Proxy {
    let proxy = Proxy::start(&moto::endpoint()).await;
    for (sql, table) in expected() {
        proxy.results_for(sql, registration(REGION, std::slice::from_ref(table)));
    }
    proxy
}

/// A source through `proxy`, as a new process would make it; `attempt` bounds each call.
async fn source(
    proxy: &Proxy,
    policy: QueryPolicy,
    attempt: Option<Duration>,
) -> Arc<AthenaSource> {
    let mut sdk = support::sdk(&proxy.url(), REGION).await;
    if let Some(limit) = attempt {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(limit)
            .build();
        sdk = sdk.to_builder().timeout_config(timeouts).build();
    }
    Arc::new(
        AthenaSource::with_policy(trailhound::aws::athena(&sdk), &trail(), &athena(), policy)
            .unwrap(),
    )
}

/// What a hunt through a proxy with no faults delivers.
async fn reference() -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy().await;
    let out = dir.path().join("reference.jsonl");
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let run = org::hunt(store, source(&proxy, quick(), None).await, &out).await;
    org::reference(&out, &run)
}

/// Hunts the organization with the faults `inject` scripts, then again once they stopped, on
/// the same state; checks the outcome against a hunt with no faults.
async fn case(
    name: &str,
    policy: QueryPolicy,
    attempt: Option<Duration>,
    inject: impl FnOnce(&Proxy),
) -> Outcome {
    let reference = reference().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let out = dir.path().join("alerts.jsonl");
    let proxy = proxy().await;
    inject(&proxy);
    let faulted = org::hunt(store.clone(), source(&proxy, policy, attempt).await, &out).await;
    let injected = proxy.injected();
    proxy.calm();
    let rerun = org::hunt(store, source(&proxy, policy, attempt).await, &out).await;
    let outcome = org::check(name, &reference, &out, &faulted, &rerun);
    org::report(name, &injected, &outcome);
    outcome
}

fn repeat(reply: Reply, n: usize) -> std::iter::RepeatN<Reply> {
    std::iter::repeat_n(reply, n)
}

#[tokio::test]
async fn athena_throttling_storms_are_waited_out_with_the_same_findings() {
    let outcome = case("athena throttling", quick(), None, |p| {
        p.script("StartQueryExecution", repeat(Reply::Throttle, 12));
        p.script("GetQueryExecution", repeat(Reply::Throttle, 8));
        // A throttle whose code this SDK does not know, recognised by its message.
        p.script(
            "GetQueryResults",
            repeat(
                Reply::Error {
                    status: 400,
                    code: Some("ThrottledClientException"),
                    message: "Rate exceeded",
                },
                4,
            ),
        );
    })
    .await;
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
}

#[tokio::test]
async fn athena_server_errors_and_lost_answers_are_retried_with_the_same_findings() {
    let server_error = Reply::Error {
        status: 500,
        code: Some("InternalServerException"),
        message: "We encountered an internal error",
    };
    let bare = Reply::Error {
        status: 503,
        code: None,
        message: "Service Unavailable",
    };
    let outcome = case(
        "athena 5xx and timeouts",
        quick(),
        Some(Duration::from_millis(700)),
        |p| {
            p.script(
                "StartQueryExecution",
                [
                    server_error.clone(),
                    Reply::Slow(Duration::from_millis(1500)),
                ],
            );
            p.script(
                "GetQueryExecution",
                [
                    bare.clone(),
                    server_error.clone(),
                    Reply::Slow(Duration::from_millis(1500)),
                ],
            );
            p.script("GetQueryResults", [server_error, bare]);
        },
    )
    .await;
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
}

#[tokio::test]
async fn a_query_failing_midway_fails_its_account_by_name_and_the_rerun_delivers_it() {
    let running = Reply::State {
        state: "RUNNING",
        reason: "",
        retryable: false,
        bytes: 0,
    };
    let outcome = case("athena query failed midway", quick(), None, |p| {
        p.script(
            "GetQueryExecution",
            [
                running.clone(),
                running,
                Reply::State {
                    state: "FAILED",
                    reason: "HIVE_CURSOR_ERROR: Please reduce your request rate.",
                    retryable: false,
                    bytes: 0,
                },
            ],
        );
    })
    .await;
    assert_eq!(outcome.failed.len(), 1, "one query failed, one account");
}

#[tokio::test]
async fn athena_throttled_past_the_patience_fails_the_account_by_name() {
    let mut policy = quick();
    policy.throttle_patience = Duration::from_millis(300);
    let outcome = case("athena throttled past patience", policy, None, |p| {
        p.script("StartQueryExecution", repeat(Reply::Throttle, 40));
    })
    .await;
    assert!(
        !outcome.failed.is_empty(),
        "the storm outlasts the patience"
    );
}
