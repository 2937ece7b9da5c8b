//! One account, end to end: plan its windows, read each window's activity, detect, stage the
//! findings in the outbox, then commit the baseline and the watermark.
//!
//! The order is what makes a stop at any point safe: findings are stored before the baseline
//! learns what they are about, and the watermark moves last. A re-run redoes an unfinished
//! window with the same end, so it finds the same findings under the same ids, and the outbox
//! keeps each id once. The crash tests stop the process between these steps
//! ([`crate::baseline::stop`]) to prove it.

use std::sync::Arc;

use tracing::Instrument;

use crate::alert::Finding;
use crate::baseline::{stop, BaselineStore, Commit, StoreError};
use crate::cloudtrail::{AccountId, Timestamp};
use crate::config::Config;
use crate::detect::rarity::ORGANIZATION;
use crate::detect::rule_findings::{detect_rules, RuleDetection, RuleStats, RuleWindow};
use crate::detect::rules::RuleSet;
use crate::detect::{DetectStats, Detector, Mode};
use crate::source::{ActivityBatch, ActivitySource, ScanReport, SourceError};
use crate::window::{Plan, Window};

#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Which delivery time to cover.
#[derive(Clone, Copy, Debug)]
pub enum Period {
    /// From the account's watermark (or the lookback on a first run) to now minus settle.
    Scheduled,
    /// Exactly this period, whatever the watermark (a replay, or `learn --from/--until`).
    Fixed(Window),
}

/// The parts a hunt runs on, shared by the accounts of a run.
#[derive(Clone)]
pub struct Hunter {
    pub config: Arc<Config>,
    pub store: Arc<dyn BaselineStore>,
    pub source: Arc<dyn ActivitySource>,
    /// Outbox names of the sinks findings are staged for.
    pub sinks: Vec<String>,
    pub now: Timestamp,
    /// The rules run over each window's events, besides first-seen detection.
    pub rules: Arc<RuleSet>,
}

/// What hunting one account did.
#[derive(Clone, Debug, Default)]
pub struct AccountReport {
    pub windows: u64,
    pub findings: Vec<Finding>,
    /// Findings staged for the first time (the rest were staged by an earlier run).
    pub findings_new: u64,
    pub scan: ScanReport,
    pub detect: DetectStats,
    pub rules: RuleStats,
}

impl Hunter {
    /// The windows an account's run covers. On an account's first scheduled run this also
    /// writes down where it starts (now minus the lookback), so that a re-run after a stop
    /// starts at the same place rather than at its own, later, now minus the lookback.
    pub async fn windows(
        &self,
        account: &AccountId,
        period: Period,
    ) -> Result<Vec<Window>, HuntError> {
        if let Period::Fixed(w) = period {
            return Ok(w.split_by_day());
        }
        let h = &self.config.hunt;
        let cursor = self.store.cursor(account).await?;
        let windows = Plan::new(self.now, h.settle, h.lookback).windows(cursor);
        if let (None, Some(first)) = (cursor.watermark, windows.first()) {
            let start = Commit {
                watermark: Some(first.start),
                ..Commit::default()
            };
            self.store.commit(account, &start).await?;
        }
        Ok(windows)
    }

    /// Hunts (or learns) one account over `period`.
    pub async fn run_account(
        &self,
        account: &AccountId,
        period: Period,
        mode: Mode,
    ) -> Result<AccountReport, HuntError> {
        let detector = Detector::new(&self.config);
        let mut report = AccountReport::default();
        let windows = self.windows(account, period).await?;
        // Windows with no activity at all only move the watermark; they are committed
        // together, so a first hunt after learning old logs does not pay a transaction per
        // empty day.
        let mut quiet_until: Option<Timestamp> = None;
        for window in windows {
            let span = tracing::info_span!("window", account = %account, window = %window);
            let batch = self
                .source
                .activity(account, &window)
                .instrument(span.clone())
                .await?;
            report.windows += 1;
            if batch.rows.is_empty() && batch.report.records == 0 {
                quiet_until = Some(window.end);
                report.scan.merge(batch.report);
                continue;
            }
            if let Some(end) = quiet_until.take() {
                self.advance(account, end).await?;
            }
            stop::point("activity-read");
            self.run_window(&detector, account, batch, period, mode, &mut report)
                .instrument(span)
                .await?;
        }
        if let Some(end) = quiet_until {
            self.advance(account, end).await?;
        }
        Ok(report)
    }

    /// Moves the watermark over windows that had nothing in them.
    async fn advance(&self, account: &AccountId, end: Timestamp) -> Result<(), HuntError> {
        let commit = Commit {
            watermark: Some(end),
            ..Commit::default()
        };
        Ok(self.store.commit(account, &commit).await?)
    }

    /// The rules' findings and history writes for one window. A source that could not keep
    /// records for them is counted, never passed over in silence.
    async fn run_rules(
        &self,
        account: &AccountId,
        batch: &ActivityBatch,
        period: Period,
        mode: Mode,
    ) -> Result<RuleDetection, HuntError> {
        if self.rules.enabled().next().is_none() {
            return Ok(RuleDetection::default());
        }
        let Some(records) = &batch.rule_records else {
            let mut none = RuleDetection::default();
            none.stats.windows_without_rules = 1;
            return Ok(none);
        };
        let at = RuleWindow {
            account,
            window: &batch.window,
            now: self.now,
            levels: &self.config.severity.levels,
            keep_state: matches!(period, Period::Scheduled),
        };
        Ok(detect_rules(&self.rules, records, self.store.as_ref(), &at, mode).await?)
    }

    async fn run_window(
        &self,
        detector: &Detector<'_>,
        account: &AccountId,
        batch: ActivityBatch,
        period: Period,
        mode: Mode,
        report: &mut AccountReport,
    ) -> Result<(), HuntError> {
        // Marked before anything is staged: a stop from here on redoes this same window.
        if matches!(period, Period::Scheduled) {
            self.store.begin_window(account, batch.window.end).await?;
        }
        tracing::debug!(
            rows = batch.rows.len(),
            records = batch.report.records,
            "activity read"
        );
        let mut detection = detector
            .detect(self.store.as_ref(), &batch, mode, self.now)
            .await?;
        let rules = self.run_rules(account, &batch, period, mode).await?;
        detection.findings.extend(rules.findings);
        detection.commit.pairs.extend(rules.pairs);
        detection.commit.rule_states = rules.states;
        report.rules.merge(&rules.stats);
        stop::point("detected");
        let staged = self.store.stage(&detection.findings, &self.sinks).await?;
        stop::point("staged");
        if !detection.peer_commit.pairs.is_empty() {
            // Before the account's commit: a stop in between redoes the window, and the peers'
            // writes can be redone.
            let organization = AccountId::parse(ORGANIZATION).expect("a valid account id");
            self.store
                .commit(&organization, &detection.peer_commit)
                .await?;
        }
        self.store.commit(account, &detection.commit).await?;
        tracing::debug!(
            findings = detection.findings.len(),
            staged,
            "window committed"
        );
        report.findings_new += staged as u64;
        report.findings.extend(detection.findings);
        report.scan.merge(batch.report);
        report.detect.merge(detection.stats);
        Ok(())
    }
}
