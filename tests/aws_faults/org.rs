//! The organization the fault tests hunt: three accounts whose logs straddle midnight, hunted
//! on a schedule at a fixed time, and the check every fault case ends with.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trailhound::alert::{Finding, FindingKind, JsonlSink, Sink};
use trailhound::baseline::BaselineStore;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::Config;
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster::{self, RunResult};
use trailhound::source::ActivitySource;
use trailhound::window::{Cursor, Plan, Window};

use super::common::{t, user_call, write_object};
use super::delivery_check::{self, Comparison};

pub const ACCOUNTS: [&str; 3] = ["111122223333", "222233334444", "333344445555"];
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// When every run of these tests takes place.
pub const NOW: &str = "2024-03-02T01:00:00Z";

pub fn accounts() -> Vec<AccountId> {
    ACCOUNTS
        .iter()
        .map(|a| AccountId::parse(a).unwrap())
        .collect()
}

pub fn config() -> Config {
    let mut c = Config::default();
    c.hunt.min_principal_age = Span::ZERO;
    c.hunt.account_min_history = Span::ZERO;
    c.hunt.lookback = Span::hours(3);
    c
}

/// The windows a first scheduled run at [`NOW`] covers.
pub fn windows() -> Vec<Window> {
    let h = config().hunt;
    Plan::new(t(NOW), h.settle, h.lookback).windows(Cursor::default())
}

/// Writes the organization's logs under `root`: per account, two users, objects in both
/// regions on both sides of midnight.
pub fn write_logs(root: &Path) {
    for (n, account) in ACCOUNTS.iter().enumerate() {
        let id = |e: &str| format!("{account}-{e}");
        write_object(
            root,
            account,
            "us-east-1",
            "2024-03-01T23:45:00Z",
            &[
                user_call(
                    account,
                    "alice",
                    "s3.amazonaws.com",
                    "ListBuckets",
                    "2024-03-01T23:41:00Z",
                    &id("e1"),
                ),
                user_call(
                    account,
                    "alice",
                    "iam.amazonaws.com",
                    "CreateAccessKey",
                    "2024-03-01T23:42:00Z",
                    &id("e2"),
                ),
            ],
        );
        let late = ["ListUsers", "GetRole", "ListRoles"][n];
        write_object(
            root,
            account,
            "eu-west-1",
            "2024-03-02T00:05:00Z",
            &[
                user_call(
                    account,
                    "bob",
                    "iam.amazonaws.com",
                    late,
                    "2024-03-01T23:12:00Z",
                    &id("e3"),
                ),
                user_call(
                    account,
                    "bob",
                    "kms.amazonaws.com",
                    "Decrypt",
                    "2024-03-02T00:01:00Z",
                    &id("e4"),
                ),
            ],
        );
    }
}

/// The organization's logs, written once per test process.
pub fn logs() -> &'static Path {
    static LOGS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("aws-faults-org-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write_logs(&root);
        root
    })
}

/// One scheduled hunt of the whole organization at [`NOW`], delivering to the JSON-lines
/// file `out`. An error is a run that stopped as a whole (the store could not even record the
/// failed accounts).
pub async fn hunt(
    store: Arc<dyn BaselineStore>,
    source: Arc<dyn ActivitySource>,
    out: &Path,
) -> Result<RunResult, String> {
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(out).unwrap())];
    let hunter = Hunter {
        config: Arc::new(config()),
        store,
        source,
        sinks: sinks.iter().map(|s| s.name()).collect(),
        now: t(NOW),
        rules: Default::default(),
    };
    muster::run(
        &hunter,
        accounts(),
        Period::Scheduled,
        Mode::Hunt,
        ACCOUNTS.len(),
        &sinks,
    )
    .await
    .map_err(|e| e.to_string())
}

/// What a run with nothing wrong delivered: what every fault case must end with.
pub fn reference(out: &Path, run: &Result<RunResult, String>) -> Vec<Finding> {
    let run = run.as_ref().expect("the reference run completes");
    assert!(!run.failed(), "the reference run failed: {:?}", run.summary);
    let found = delivery_check::delivered(out);
    assert!(
        found.len() >= 3 * ACCOUNTS.len(),
        "the reference finds something in every account: {found:?}"
    );
    found
}

/// What a fault case did, for its figures.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Accounts the faulted run failed, each named in its error.
    pub failed: Vec<String>,
    pub lost: usize,
    pub under_two_ids: usize,
}

/// The check every fault case ends with. The faulted run either hunted an account exactly as
/// the reference did or failed it, naming it, and said so with a hunt-failed finding; after the
/// faults stopped, the re-run delivered everything the reference did, under the same ids.
pub fn check(
    case: &str,
    reference: &[Finding],
    out: &Path,
    faulted: &Result<RunResult, String>,
    rerun: &Result<RunResult, String>,
) -> Outcome {
    let delivered = delivery_check::delivered(out);
    let (failures, findings): (Vec<_>, Vec<_>) = delivered
        .into_iter()
        .partition(|f| f.kind == FindingKind::HuntFailed);
    let failed: Vec<String> = match faulted {
        Ok(run) => {
            for (account, error) in &run.summary.accounts_failed {
                assert!(
                    error.contains(account.as_str()),
                    "{case}: the error of {account} names it: {error}"
                );
                assert!(
                    failures.iter().any(|f| f.account.as_str() == account),
                    "{case}: the failure of {account} was reported as a finding"
                );
            }
            // An account the faulted run did not fail was hunted in full by it.
            let first: BTreeSet<&str> = run.findings.iter().map(|f| f.id.as_str()).collect();
            let failed: Vec<String> = run
                .summary
                .accounts_failed
                .iter()
                .map(|(a, _)| a.clone())
                .collect();
            for f in reference {
                if !failed.contains(&f.account.to_string()) {
                    assert!(
                        first.contains(f.id.as_str()),
                        "{case}: account {} did not fail, yet the faulted run missed {} ({})",
                        f.account,
                        f.id,
                        f.title
                    );
                }
            }
            failed
        }
        // The whole run stopped with an error (the CLI exits 2 with it): every account is
        // owed to the re-run.
        Err(e) => {
            assert!(!e.is_empty(), "{case}: the run stopped without saying why");
            ACCOUNTS.iter().map(|a| a.to_string()).collect()
        }
    };
    let rerun = rerun
        .as_ref()
        .unwrap_or_else(|e| panic!("{case}: the re-run after the faults stopped failed: {e}"));
    assert!(
        !rerun.failed(),
        "{case}: the re-run after the faults stopped failed: {:?} {:?}",
        rerun.summary.accounts_failed,
        rerun.sink_failures
    );
    let comparison = Comparison::of(&delivery_check::ids(reference), &findings);
    comparison.assert_complete(case);
    Outcome {
        failed,
        lost: comparison.lost.len(),
        under_two_ids: comparison.under_two_ids.len(),
    }
}

/// The figures of a case, for the closing note (`cargo test -- --nocapture`).
pub fn report(
    name: &str,
    injected: &std::collections::BTreeMap<(String, &'static str), usize>,
    outcome: &Outcome,
) {
    let faults: Vec<String> = injected
        .iter()
        .map(|((op, kind), n)| format!("{op} {kind} x{n}"))
        .collect();
    eprintln!(
        "fault case `{name}`: injected [{}]; accounts failed by name {:?}; lost {}; under two ids {}",
        faults.join(", "),
        outcome.failed,
        outcome.lost,
        outcome.under_two_ids
    );
}
