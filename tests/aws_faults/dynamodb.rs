//! Faults of DynamoDB under a whole hunt: the organization's state and outbox in a table
//! reached through the fault proxy, its activity from the local folder.

use std::sync::Arc;
use std::time::Duration;

use trailhound::alert::Finding;
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::source::scan::FolderSource;

use super::org::{self, Outcome};
use super::proxy::{Proxy, Reply};
use super::{moto, support};

/// Every call the DynamoDB store makes in a hunt.
const OPERATIONS: [&str; 6] = [
    "GetItem",
    "UpdateItem",
    "BatchGetItem",
    "BatchWriteItem",
    "PutItem",
    "Query",
];

fn folder() -> Arc<FolderSource> {
    Arc::new(FolderSource::open(org::logs()).unwrap())
}

/// What a hunt with no faults delivers (the store does not change what is found).
async fn reference() -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference.jsonl");
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let run = org::hunt(store, folder(), &out).await;
    org::reference(&out, &run)
}

/// A store on a new table, reached through `proxy`, as a new process would make it.
async fn store(proxy: &Proxy, table: &str, attempt: Option<Duration>) -> Arc<DynamoStore> {
    let mut sdk = support::sdk(&proxy.url(), "us-east-1").await;
    if let Some(limit) = attempt {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(limit)
            .build();
        sdk = sdk.to_builder().timeout_config(timeouts).build();
    }
    Arc::new(DynamoStore::new(trailhound::aws::dynamodb(&sdk), table))
}

async fn case(name: &str, attempt: Option<Duration>, inject: impl FnOnce(&Proxy)) -> Outcome {
    let reference = reference().await;
    let direct = trailhound::aws::dynamodb(&moto::sdk().await);
    let table = format!("th-faults-{}", moto::unique(12));
    DynamoStore::create_table(&direct, &table).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let proxy = Proxy::start(&moto::endpoint()).await;
    inject(&proxy);
    let faulted = org::hunt(store(&proxy, &table, attempt).await, folder(), &out).await;
    let injected = proxy.injected();
    proxy.calm();
    let rerun = org::hunt(store(&proxy, &table, attempt).await, folder(), &out).await;
    let outcome = org::check(name, &reference, &out, &faulted, &rerun);
    org::report(name, &injected, &outcome);
    outcome
}

#[tokio::test]
async fn dynamodb_throttling_storms_are_waited_out_with_the_same_findings() {
    let throttled = Reply::Error {
        status: 400,
        code: Some("ProvisionedThroughputExceededException"),
        message: "The level of configured provisioned throughput for the table was exceeded",
    };
    let outcome = case("dynamodb throttling", None, |p| {
        for op in OPERATIONS {
            p.script(op, std::iter::repeat_n(throttled.clone(), 4));
        }
        p.script(
            "BatchWriteItem",
            std::iter::repeat_n(
                Reply::Error {
                    status: 400,
                    code: Some("ThrottlingException"),
                    message: "Rate of requests exceeds the allowed throughput",
                },
                3,
            ),
        );
    })
    .await;
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
}

#[tokio::test]
async fn dynamodb_batches_left_unprocessed_are_sent_again_with_the_same_findings() {
    let outcome = case("dynamodb unprocessed", None, |p| {
        p.script("BatchGetItem", std::iter::repeat_n(Reply::Unprocessed, 8));
        p.script("BatchWriteItem", std::iter::repeat_n(Reply::Unprocessed, 8));
    })
    .await;
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
}

#[tokio::test]
async fn dynamodb_server_errors_and_lost_answers_lose_nothing() {
    let outcome = case(
        "dynamodb 5xx and timeouts",
        Some(Duration::from_millis(700)),
        |p| {
            for op in OPERATIONS {
                p.script(
                    op,
                    [
                        Reply::Error {
                            status: 500,
                            code: Some("InternalServerError"),
                            message: "Internal server error",
                        },
                        Reply::Slow(Duration::from_millis(1500)),
                        Reply::Error {
                            status: 503,
                            code: None,
                            message: "Service Unavailable",
                        },
                    ],
                );
            }
        },
    )
    .await;
    // The SDK retries each call three times: a call that meets all three faults fails its
    // account, by name, and the re-run delivers what it owed.
    eprintln!(
        "dynamodb 5xx and timeouts: {} account(s) failed by name",
        outcome.failed.len()
    );
}
