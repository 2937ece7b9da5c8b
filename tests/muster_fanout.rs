//! The fan-out over accounts: one account's failure, even a panic, never stops the others,
//! and is reported under its own account.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{t, user_call, write_object};
use trailhound::alert::FindingKind;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::AccountId;
use trailhound::config::Config;
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster;
use trailhound::source::scan::FolderSource;
use trailhound::source::{ActivityBatch, ActivitySource, SourceError};
use trailhound::window::Window;

const GOOD: [&str; 2] = ["111111111111", "333333333333"];
const PANICS: &str = "222222222222";

/// The folder source, except that reading one account's activity panics.
struct PanicsFor {
    inner: FolderSource,
    account: AccountId,
}

#[async_trait]
impl ActivitySource for PanicsFor {
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError> {
        self.inner.accounts().await
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError> {
        if *account == self.account {
            panic!("a bug met in account {account}");
        }
        self.inner.activity(account, window).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_account_is_reported_under_its_id_and_the_others_are_hunted() {
    let dir = tempfile::tempdir().unwrap();
    for (n, account) in GOOD.iter().chain([&PANICS]).enumerate() {
        write_object(
            dir.path(),
            account,
            "us-east-1",
            "2024-03-01T10:05:00Z",
            &[user_call(
                account,
                "alice",
                "s3.amazonaws.com",
                "ListBuckets",
                "2024-03-01T10:01:00Z",
                &format!("e{n}"),
            )],
        );
    }
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let source = PanicsFor {
        inner: FolderSource::open(dir.path()).unwrap(),
        account: AccountId::parse(PANICS).unwrap(),
    };
    let accounts = source.accounts().await.unwrap();
    assert_eq!(accounts.len(), 3);
    let hunter = Hunter {
        config: Arc::new(Config::default()),
        store,
        source: Arc::new(source),
        sinks: vec![],
        now: t("2024-03-01T12:00:00Z"),
        rules: Default::default(),
    };
    let window = Window::new(t("2024-03-01T10:00:00Z"), t("2024-03-01T11:00:00Z")).unwrap();
    // Concurrency 1: the panicking account runs between the two others.
    let result = muster::run(&hunter, accounts, Period::Fixed(window), Mode::Hunt, 1, &[])
        .await
        .unwrap();

    let failed = &result.summary.accounts_failed;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, PANICS);
    assert!(failed[0].1.contains("a bug met in account"), "{failed:?}");
    let hunt_failed: Vec<_> = result
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::HuntFailed)
        .collect();
    assert_eq!(hunt_failed.len(), 1);
    assert_eq!(hunt_failed[0].account.as_str(), PANICS);
    // Both other accounts were read.
    assert_eq!(result.summary.report.records, 2);
    assert!(result.failed());
}
