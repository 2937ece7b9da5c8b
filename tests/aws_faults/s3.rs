//! Faults of S3 under a whole hunt: the organization's activity read straight from the trail
//! bucket through the fault proxy.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use trailhound::alert::Finding;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::config::TrailConfig;
use trailhound::source::s3::S3Source;

use super::org::{self, Outcome};
use super::proxy::{Proxy, Reply};
use super::{moto, support};

/// Uploads every file under `root` to `bucket`, keyed by its path below `root`.
async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key: Vec<String> = path
                .strip_prefix(root)
                .unwrap()
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            s3.put_object()
                .bucket(bucket)
                .key(key.join("/"))
                .body(ByteStream::from(std::fs::read(&path).unwrap()))
                .send()
                .await
                .expect("PutObject in the emulator");
        }
    }
}

/// A bucket of its own holding the organization's logs.
async fn bucket() -> String {
    let s3 = trailhound::aws::s3(&moto::sdk().await);
    let bucket = format!("trailhound-faults-{}", moto::unique(12));
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    upload(&s3, &bucket, org::logs()).await;
    bucket
}

/// The S3 source on `bucket` through `endpoint`, as a new process would make it.
async fn source(endpoint: &str, bucket: &str, attempt: Option<Duration>) -> Arc<S3Source> {
    let mut sdk = support::sdk(endpoint, "us-east-1").await;
    if let Some(limit) = attempt {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(limit)
            .build();
        sdk = sdk.to_builder().timeout_config(timeouts).build();
    }
    let trail = TrailConfig {
        bucket: bucket.to_string(),
        prefix: String::new(),
        org_id: None,
        regions: org::REGIONS.map(String::from).to_vec(),
    };
    Arc::new(S3Source::new(trailhound::aws::s3(&sdk), &trail).unwrap())
}

async fn reference(bucket: &str) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference.jsonl");
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let run = org::hunt(store, source(&moto::endpoint(), bucket, None).await, &out).await;
    org::reference(&out, &run)
}

async fn case(name: &str, attempt: Option<Duration>, inject: impl FnOnce(&Proxy)) -> Outcome {
    let bucket = bucket().await;
    let reference = reference(&bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let out = dir.path().join("alerts.jsonl");
    let proxy = Proxy::start(&moto::endpoint()).await;
    inject(&proxy);
    let faulted = org::hunt(
        store.clone(),
        source(&proxy.url(), &bucket, attempt).await,
        &out,
    )
    .await;
    let injected = proxy.injected();
    proxy.calm();
    let rerun = org::hunt(store, source(&proxy.url(), &bucket, attempt).await, &out).await;
    let outcome = org::check(name, &reference, &out, &faulted, &rerun);
    org::report(name, &injected, &outcome);
    outcome
}

#[tokio::test]
async fn s3_read_errors_and_truncated_bodies_lose_nothing() {
    let outcome = case("s3 read errors", Some(Duration::from_millis(700)), |p| {
        p.script(
            "GetObject",
            [
                Reply::S3Error {
                    status: 500,
                    code: "InternalError",
                },
                Reply::Truncate,
                Reply::S3Error {
                    status: 503,
                    code: "SlowDown",
                },
                Reply::Truncate,
                Reply::Slow(Duration::from_millis(1500)),
                Reply::Truncate,
            ],
        );
        p.script(
            "ListObjectsV2",
            [
                Reply::S3Error {
                    status: 503,
                    code: "SlowDown",
                },
                Reply::S3Error {
                    status: 500,
                    code: "InternalError",
                },
            ],
        );
    })
    .await;
    // A truncated body is not retried by the SDK: its window fails the account, by name, and
    // the re-run reads the object whole.
    assert!(
        !outcome.failed.is_empty(),
        "three truncated bodies fail at least one account"
    );
}
