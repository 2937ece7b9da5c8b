//! Faults of the Athena API, on the local AWS emulator behind a fault-injecting proxy:
//! throttling is retried with backoff for as long as the patience allows (so more hunts than
//! the quota of active queries all finish), a query that stays QUEUED or RUNNING is waited for and
//! one that never ends is cancelled at the deadline, a FAILED query fails its account with
//! Athena's reason (or runs again when Athena says it may), and managed partitions are added
//! once before the query that needs them.
//!
//! Each test uses its own region: moto keeps one result queue per account and region, and the
//! tests of this file run at the same time.

mod common;
#[path = "sql/duckdb.rs"]
mod duckdb;
mod moto;
#[path = "athena_emulator/proxy.rs"]
mod proxy;
#[path = "athena_emulator/support.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{t, user_call, write_object};
use proxy::{Proxy, Reply};
use support::{athena, quick, register, sdk, table_ddl, trail};
use trailhound::alert::FindingKind;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::{Config, PartitionMode};
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster;
use trailhound::source::athena::{activity_rows, AthenaSource, Day, ResultTable, SqlSettings};
use trailhound::window::Window;

fn config() -> Config {
    let mut c = Config::default();
    c.hunt.min_principal_age = Span::ZERO;
    c.hunt.account_min_history = Span::ZERO;
    c
}

const ACCOUNT: &str = "111122223333";

/// One account, two objects either side of midnight.
fn small_logs(root: &Path) {
    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-01T23:45:00Z",
        &[
            user_call(
                ACCOUNT,
                "alice",
                "s3.amazonaws.com",
                "ListBuckets",
                "2024-03-01T23:41:00Z",
                "e1",
            ),
            user_call(
                ACCOUNT,
                "alice",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "2024-03-01T23:42:00Z",
                "e2",
            ),
        ],
    );
    write_object(
        root,
        ACCOUNT,
        "eu-west-1",
        "2024-03-02T00:05:00Z",
        &[user_call(
            ACCOUNT,
            "bob",
            "iam.amazonaws.com",
            "ListUsers",
            "2024-03-01T23:12:00Z",
            "e3",
        )],
    );
}

/// A source through a fault proxy in `region`, with its logs and the rows DuckDB gives for
/// `window`.
struct Rig {
    _dir: tempfile::TempDir,
    proxy: Proxy,
    source: Arc<AthenaSource>,
    window: Window,
    expected: ResultTable,
    region: &'static str,
}

async fn rig(region: &'static str, mode: PartitionMode) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    small_logs(dir.path());
    let proxy = Proxy::start(&moto::endpoint()).await;
    let aws = sdk(&proxy.url(), region).await;
    let trail = trail(
        "trailhound-faults",
        None,
        &["us-east-1".into(), "eu-west-1".into()],
    );
    let athena = athena(mode);
    let source = Arc::new(
        AthenaSource::with_policy(trailhound::aws::athena(&aws), &trail, &athena, quick()).unwrap(),
    );
    let window = Window::new(t("2024-03-01T23:30:00Z"), t("2024-03-02T00:30:00Z")).unwrap();
    let account = AccountId::parse(ACCOUNT).unwrap();
    let mut ddl = table_ddl(&trail, &athena);
    if mode == PartitionMode::Managed {
        let sql = SqlSettings::new(&trail, &athena).unwrap();
        ddl.push(
            sql.add_partitions(&account, &Day::covering(&window))
                .unwrap(),
        );
    }
    let query = source.activity_sql(&account, &window).unwrap();
    let expected = duckdb::run(dir.path(), &ddl, &[query]).remove(0);
    Rig {
        _dir: dir,
        proxy,
        source,
        window,
        expected,
        region,
    }
}

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

#[tokio::test]
async fn throttled_calls_and_slow_queries_are_waited_out() {
    let rig = rig("ap-south-1", PartitionMode::Projection).await;
    register(rig.region, std::slice::from_ref(&rig.expected)).await;
    rig.proxy
        .script("StartQueryExecution", [Reply::Throttle, Reply::Throttle]);
    rig.proxy.script(
        "GetQueryExecution",
        [
            Reply::Throttle,
            Reply::State {
                state: "QUEUED",
                reason: "",
                retryable: false,
                bytes: 0,
            },
            Reply::State {
                state: "RUNNING",
                reason: "",
                retryable: false,
                bytes: 0,
            },
            Reply::State {
                state: "SUCCEEDED",
                reason: "",
                retryable: false,
                bytes: 4096,
            },
        ],
    );
    rig.proxy.script("GetQueryResults", [Reply::Throttle]);
    let batch = rig
        .source
        .read(&account(), &rig.window)
        .await
        .expect("retried to success");
    let (want, _) = activity_rows(&rig.expected, &account()).unwrap();
    assert_eq!(batch.rows, want);
    assert_eq!(batch.rows.len(), 3);
    let c = rig.source.counters();
    assert_eq!(
        (c.retries, c.queries_started, c.activity_queries),
        (4, 1, 1)
    );
    assert_eq!(c.bytes_scanned, 4096);
    assert_eq!(rig.proxy.seen("StartQueryExecution"), 3);
    assert_eq!(rig.proxy.seen("GetQueryExecution"), 4);
}

#[tokio::test]
async fn throttling_past_the_patience_is_a_clear_error_naming_the_account() {
    let mut rig = rig("ap-southeast-2", PartitionMode::Projection).await;
    rig.proxy.script(
        "StartQueryExecution",
        std::iter::repeat_n(Reply::Throttle, 1000),
    );
    let mut policy = quick();
    policy.throttle_patience = Duration::from_millis(300);
    let aws = sdk(&rig.proxy.url(), rig.region).await;
    let trail = trail("trailhound-faults", None, &["us-east-1".into()]);
    rig.source = Arc::new(
        AthenaSource::with_policy(
            trailhound::aws::athena(&aws),
            &trail,
            &athena(PartitionMode::Projection),
            policy,
        )
        .unwrap(),
    );
    let e = rig
        .source
        .read(&account(), &rig.window)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("StartQueryExecution"), "{e}");
    assert!(e.contains("still throttled after"), "{e}");
    assert!(e.contains("athena.throttle_patience"), "{e}");
    assert!(e.contains("TooManyRequestsException"), "{e}");
    assert!(e.contains(ACCOUNT), "{e}");
    assert_eq!(rig.source.counters().queries_started, 0);
    // Throttled tries do not count against the attempts for transient failures (4 here).
    assert!(rig.proxy.seen("StartQueryExecution") > 4);
}

/// More hunts at once than Athena's quota of active queries: the starts beyond it are refused
/// until earlier queries end, however many refusals that takes, and no account is lost.
#[tokio::test]
async fn more_hunts_than_the_query_quota_all_finish() {
    const HUNTS: usize = 8;
    let proxy = Proxy::start(&moto::endpoint()).await;
    let region = "ap-northeast-3";
    // Each query runs long enough that the last of 8 hunts, 2 at a time, waits far longer
    // than a few quick retries.
    proxy.limit_active(2, Duration::from_millis(300));
    let aws = sdk(&proxy.url(), region).await;
    let trail = trail("trailhound-faults", None, &["us-east-1".into()]);
    let source = Arc::new(
        AthenaSource::with_policy(
            trailhound::aws::athena(&aws),
            &trail,
            &athena(PartitionMode::Projection),
            quick(),
        )
        .unwrap(),
    );
    let accounts: Vec<AccountId> = (0..HUNTS)
        .map(|n| AccountId::parse(&format!("1000000000{n:02}")).unwrap())
        .collect();
    // Every query gets an empty activity result (moto hands them out in start order).
    let empty = ResultTable {
        columns: trailhound::source::athena::rows::COLUMNS
            .iter()
            .map(|c| c.to_string())
            .collect(),
        rows: vec![],
    };
    register(region, &vec![empty; HUNTS]).await;
    let store = tempfile::tempdir().unwrap();
    let hunter = Hunter {
        config: Arc::new(config()),
        store: Arc::new(SqliteStore::open(&store.path().join("state.db")).unwrap()),
        source: source.clone(),
        sinks: vec![],
        now: t("2024-03-02T01:00:00Z"),
        rules: Default::default(),
    };
    let window = Window::new(t("2024-03-02T00:00:00Z"), t("2024-03-02T00:30:00Z")).unwrap();
    let result = muster::run(
        &hunter,
        accounts,
        Period::Fixed(window),
        Mode::Hunt,
        HUNTS,
        &[],
    )
    .await
    .unwrap();
    assert!(
        result.summary.accounts_failed.is_empty(),
        "{:?}",
        result.summary.accounts_failed
    );
    assert_eq!(result.summary.windows, HUNTS as u64);
    let (refused, peak) = proxy.quota_seen();
    assert!(refused > 0, "the quota was reached");
    assert!(peak <= 2, "never more than the quota at once: {peak}");
    assert_eq!(source.counters().activity_queries, HUNTS as u64);
}

#[tokio::test]
async fn a_failed_query_fails_its_account_with_athenas_reason() {
    let rig = rig("ca-central-1", PartitionMode::Projection).await;
    let reason = "COLUMN_NOT_FOUND: line 12:5: Column 'useridentity' cannot be resolved";
    rig.proxy.script(
        "GetQueryExecution",
        [Reply::State {
            state: "FAILED",
            reason,
            retryable: false,
            bytes: 0,
        }],
    );
    let store = tempfile::tempdir().unwrap();
    let hunter = Hunter {
        config: Arc::new(config()),
        store: Arc::new(SqliteStore::open(&store.path().join("state.db")).unwrap()),
        source: rig.source.clone(),
        sinks: vec![],
        now: t("2024-03-02T01:00:00Z"),
        rules: Default::default(),
    };
    let result = muster::run(
        &hunter,
        vec![account()],
        Period::Fixed(rig.window),
        Mode::Hunt,
        1,
        &[],
    )
    .await
    .unwrap();
    assert!(result.failed());
    let (failed_account, message) = &result.summary.accounts_failed[0];
    assert_eq!(failed_account, ACCOUNT);
    assert!(
        message.contains("ended FAILED") && message.contains(reason),
        "{message}"
    );
    assert!(result
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::HuntFailed));
    let c = rig.source.counters();
    assert_eq!(
        (c.queries_failed, c.retries),
        (1, 0),
        "not retried: Athena said not retryable"
    );
}

#[tokio::test]
async fn a_retryable_failure_is_run_again() {
    let rig = rig("eu-north-1", PartitionMode::Projection).await;
    // The failed start takes the first queued result, the second start the next.
    register(rig.region, &[ResultTable::default(), rig.expected.clone()]).await;
    rig.proxy.script(
        "GetQueryExecution",
        [Reply::State {
            state: "FAILED",
            reason: "S3 returned Slow Down",
            retryable: true,
            bytes: 0,
        }],
    );
    let batch = rig
        .source
        .read(&account(), &rig.window)
        .await
        .expect("second run succeeds");
    assert_eq!(batch.rows.len(), 3);
    let c = rig.source.counters();
    assert_eq!((c.queries_started, c.queries_failed, c.retries), (2, 1, 1));
}

#[tokio::test]
async fn a_query_that_never_ends_times_out_and_is_cancelled() {
    let mut rig = rig("sa-east-1", PartitionMode::Projection).await;
    let running = Reply::State {
        state: "RUNNING",
        reason: "",
        retryable: false,
        bytes: 0,
    };
    rig.proxy
        .script("GetQueryExecution", std::iter::repeat_n(running, 1000));
    let mut policy = quick();
    policy.timeout = Duration::from_millis(400);
    let aws = sdk(&rig.proxy.url(), rig.region).await;
    let trail = trail("trailhound-faults", None, &["us-east-1".into()]);
    rig.source = Arc::new(
        AthenaSource::with_policy(
            trailhound::aws::athena(&aws),
            &trail,
            &athena(PartitionMode::Projection),
            policy,
        )
        .unwrap(),
    );
    let e = rig
        .source
        .read(&account(), &rig.window)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("did not finish within") && e.contains("athena.query_timeout"),
        "{e}"
    );
    assert_eq!(
        rig.proxy.seen("StopQueryExecution"),
        1,
        "the abandoned query is cancelled"
    );
}

#[tokio::test]
async fn managed_mode_adds_the_windows_partitions_before_its_one_query() {
    let rig = rig("us-west-1", PartitionMode::Managed).await;
    // The partition DDL takes a queued result too (moto queues per started statement).
    register(rig.region, &[ResultTable::default(), rig.expected.clone()]).await;
    let batch = rig.source.read(&account(), &rig.window).await.unwrap();
    assert_eq!(batch.rows.len(), 3);
    // A second window of the same days needs no new partitions in this process.
    register(rig.region, std::slice::from_ref(&rig.expected)).await;
    rig.source.read(&account(), &rig.window).await.unwrap();
    let c = rig.source.counters();
    assert_eq!((c.ddl_statements, c.activity_queries), (1, 2));
    let ddl = rig
        .proxy
        .queries()
        .into_iter()
        .find(|q| q.starts_with("ALTER TABLE"))
        .expect("partition DDL sent");
    assert_eq!(
        ddl.matches("PARTITION (").count(),
        4,
        "2 days x 2 regions: {ddl}"
    );
}
