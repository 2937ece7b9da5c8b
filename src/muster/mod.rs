//! A run: the accounts to hunt, hunted at bounded concurrency where one account's failure
//! never stops the others, then the outbox drained into every sink.

pub mod accounts;
pub mod list;
pub mod summary;

pub use summary::RunSummary;

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::alert::{finding_id, Finding, FindingKind, Level, PrincipalRef, Reason, Severity, Sink};
use crate::baseline::{BaselineStore, StoreError};
use crate::cloudtrail::{AccountId, IdentityType};
use crate::detect::Mode;
use crate::hunt::{AccountReport, Hunter, Period};

/// How many findings are handed to a sink at once.
const DELIVERY_BATCH: usize = 5_000;

/// What a whole run did.
pub struct RunResult {
    pub summary: RunSummary,
    /// Findings this run produced (including ones an earlier, stopped run had already staged).
    pub findings: Vec<Finding>,
    /// Sinks that failed, with the reason; their findings stay pending.
    pub sink_failures: Vec<(String, String)>,
}

impl RunResult {
    pub fn failed(&self) -> bool {
        !self.summary.accounts_failed.is_empty() || !self.sink_failures.is_empty()
    }
}

/// The finding that stands for an account that could not be hunted, so the SOC sees the gap.
fn hunt_failed_finding(account: &AccountId, error: &str, hunter: &Hunter) -> Finding {
    // No window was hunted; the failure is stamped with the run's time.
    let now = hunter.now;
    Finding {
        id: finding_id(&[
            FindingKind::HuntFailed.name(),
            account.as_str(),
            &now.to_string(),
        ]),
        kind: FindingKind::HuntFailed,
        title: format!("account {account} could not be hunted: {error}"),
        rule: None,
        account: account.clone(),
        principal: PrincipalRef {
            arn: None,
            kind: IdentityType::Unknown,
            key: "trailhound".into(),
        },
        action: None,
        event_source: None,
        event_name: None,
        severity: Severity {
            score: 50,
            level: Level::Medium,
            reasons: vec![Reason {
                factor: "hunt-failed".into(),
                weight: 50,
                detail: error.to_string(),
            }],
        },
        first_seen: now,
        last_seen: now,
        count: 0,
        source_ips: vec![],
        user_agents: vec![],
        regions: vec![],
        error_codes: vec![],
        event_ids: vec![],
        window_start: now,
        window_end: now,
        detected_at: now,
    }
}

/// Hunts (or learns) every account, `concurrency` at a time.
pub async fn run_accounts(
    hunter: &Hunter,
    accounts: Vec<AccountId>,
    period: Period,
    mode: Mode,
    concurrency: usize,
) -> (BTreeMap<AccountId, AccountReport>, Vec<(AccountId, String)>) {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    // Which account each task hunts, for a task that ends without saying.
    let mut held = HashMap::new();
    for account in accounts {
        let hunter = hunter.clone();
        let gate = gate.clone();
        let task_account = account.clone();
        let handle = tasks.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = gate.acquire_owned().await;
            let span = tracing::info_span!("account", account = %task_account);
            let hunt = tracing::Instrument::instrument(
                hunter.run_account(&task_account, period, mode),
                span,
            );
            // A panic is caught here, inside the task, where the account is still known. The
            // hunter is shared read-only and each account's state is its own, so nothing
            // another account relies on is left half-changed.
            let result = match AssertUnwindSafe(hunt).catch_unwind().await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(panic) => Err(format!(
                    "the hunt stopped on a bug: {}",
                    panic_text(&*panic)
                )),
            };
            (task_account, result)
        });
        held.insert(handle.id(), account);
    }
    let mut reports = BTreeMap::new();
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((account, Ok(report))) => {
                reports.insert(account, report);
            }
            Ok((account, Err(e))) => {
                tracing::error!(account = %account, error = %e, "account failed");
                failed.push((account, e));
            }
            // Panics are caught inside the task, so this is a task cancelled under us (the
            // runtime shutting down); it is still reported under its own account.
            Err(e) => {
                if let Some(account) = held.remove(&e.id()) {
                    tracing::error!(account = %account, error = %e, "account failed");
                    failed.push((account, format!("the hunt task ended early: {e}")));
                }
            }
        }
    }
    failed.sort();
    (reports, failed)
}

/// The message a panic carried, when it was text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Sends every finding pending for each sink, in batches sorted by severity.
pub async fn deliver(
    store: &dyn BaselineStore,
    sinks: &[Box<dyn Sink>],
) -> (BTreeMap<String, u64>, Vec<(String, String)>) {
    let mut delivered = BTreeMap::new();
    let mut failures = Vec::new();
    for sink in sinks {
        let name = sink.name();
        let mut total = 0u64;
        loop {
            let mut batch = match store.pending(&name, DELIVERY_BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    failures.push((name.clone(), e.to_string()));
                    break;
                }
            };
            if batch.is_empty() {
                // A sink that got nothing this run still says so (the table prints "no findings").
                if total == 0 {
                    if let Err(e) = sink.deliver(&[]).await {
                        failures.push((name.clone(), e.error.to_string()));
                    }
                }
                break;
            }
            batch.sort_by(|a, b| {
                b.severity
                    .score
                    .cmp(&a.severity.score)
                    .then(a.first_seen.cmp(&b.first_seen))
            });
            let (sent, stopped) = deliver_batch(store, sink.as_ref(), &name, &batch).await;
            total += sent;
            if let Some(reason) = stopped {
                failures.push((name.clone(), reason));
                break;
            }
        }
        delivered.insert(name, total);
    }
    (delivered, failures)
}

/// Hands `batch` to `sink` in the pieces it asks for, marking each piece's taken findings
/// delivered before the next goes: a run stopped mid-delivery then resends little. Returns how
/// many were marked, and why it stopped early.
async fn deliver_batch(
    store: &dyn BaselineStore,
    sink: &dyn Sink,
    name: &str,
    batch: &[Finding],
) -> (u64, Option<String>) {
    let mut marked = 0;
    for piece in batch.chunks(sink.piece_size().max(1)) {
        let (taken, stopped) = match sink.deliver(piece).await {
            Ok(()) => (piece.len(), None),
            Err(s) => (s.accepted.min(piece.len()), Some(s.error.to_string())),
        };
        // What the sink took is marked even when it stopped part way, so the next try
        // resends only the rest.
        let ids: Vec<String> = piece[..taken].iter().map(|f| f.id.clone()).collect();
        if let Err(e) = store.mark_delivered(name, &ids).await {
            return (marked, Some(e.to_string()));
        }
        marked += ids.len() as u64;
        if stopped.is_some() {
            return (marked, stopped);
        }
    }
    (marked, None)
}

/// Sends the run's health event to every sink that takes one. A failure is reported like a
/// failed delivery; the findings themselves are not affected.
async fn report_run(
    summary: &RunSummary,
    hunter: &Hunter,
    mode: Mode,
    sinks: &[Box<dyn Sink>],
    failures: &mut Vec<(String, String)>,
) {
    let mut event = match serde_json::to_value(summary) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return,
    };
    event.insert("event_type".into(), "run-summary".into());
    event.insert("run_at".into(), hunter.now.to_string().into());
    event.insert(
        "mode".into(),
        match mode {
            Mode::Hunt => "hunt",
            Mode::Learn => "learn",
        }
        .into(),
    );
    event.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    let event = serde_json::Value::Object(event);
    for sink in sinks {
        if let Err(e) = sink.report_run(&event).await {
            failures.push((sink.name(), format!("the run summary was not sent: {e}")));
        }
    }
}

/// A whole run: hunt or learn the accounts, record failures as findings, deliver, summarise.
pub async fn run(
    hunter: &Hunter,
    accounts: Vec<AccountId>,
    period: Period,
    mode: Mode,
    concurrency: usize,
    sinks: &[Box<dyn Sink>],
) -> Result<RunResult, StoreError> {
    let started = std::time::Instant::now();
    let hunted = accounts.len() as u64;
    let (reports, failed) = run_accounts(hunter, accounts, period, mode, concurrency).await;

    let failure_findings: Vec<Finding> = failed
        .iter()
        .map(|(account, e)| hunt_failed_finding(account, e, hunter))
        .collect();
    hunter.store.stage(&failure_findings, &hunter.sinks).await?;

    let (delivered, sink_failures) = deliver(hunter.store.as_ref(), sinks).await;

    let mut summary = RunSummary {
        accounts_hunted: hunted,
        accounts_failed: failed
            .iter()
            .map(|(a, e)| (a.to_string(), e.clone()))
            .collect(),
        findings_delivered: delivered,
        ..RunSummary::default()
    };
    let mut findings = failure_findings;
    for report in reports.into_values() {
        summary.windows += report.windows;
        summary.findings_new += report.findings_new;
        summary.principals += report.detect.principals;
        summary.pairs_learned += report.detect.pairs_learned;
        for (k, v) in &report.detect.ignored {
            *summary.principals_ignored.entry(k.clone()).or_default() += v;
        }
        summary.calls_failed += report.detect.failed_calls;
        summary.young_suppressed += report.detect.young_suppressed;
        summary.report.merge(report.scan);
        summary.rules.merge(&report.rules);
        findings.extend(report.findings);
    }
    for f in &findings {
        *summary
            .findings_by_level
            .entry(f.severity.level)
            .or_default() += 1;
    }
    findings.sort_by(|a, b| {
        b.severity
            .score
            .cmp(&a.severity.score)
            .then(a.first_seen.cmp(&b.first_seen))
    });
    summary.store = hunter.store.counters();
    summary.athena = hunter.source.athena_counters();
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    let mut sink_failures = sink_failures;
    report_run(&summary, hunter, mode, sinks, &mut sink_failures).await;
    Ok(RunResult {
        summary,
        findings,
        sink_failures,
    })
}
