//! The direct scan of the CloudTrail bucket itself, for organisations that do not want Athena.
//!
//! A window lists only the prefixes it touches: for each of the account's regions, the day
//! folders `[prefix/]AWSLogs/[o-ID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/` of the days the
//! window overlaps. Keys in a day folder sort by their delivery minute, so a listing starts
//! just before the window and stops at the first key delivered after it. Objects are chosen by
//! the delivery time in their name (half-open, as the folder source does), fetched with
//! bounded concurrency, and folded by the same code as the folder source.
//!
//! Errors. A listing or fetch that fails (denied, throttled past the SDK's retries, network)
//! fails the account's hunt: its watermark stays, so the next run reads the window again and
//! nothing is lost. An object that is gone (`NoSuchKey`, deleted between listing and reading)
//! or archived (`InvalidObjectState`, moved to Glacier) cannot be read by retrying either, so
//! it is named in the report and skipped, as a corrupt object is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use futures::StreamExt;

use super::activity::{ActivityBatch, ScanReport};
use super::fold::{fold_object, ObjectRef, Partial, WindowShared};
use super::{ActivitySource, SourceError};
use crate::cloudtrail::layout::{day_prefix, parse_object_name, ObjectKind};
use crate::cloudtrail::{AccountId, Region, Timestamp};
use crate::config::TrailConfig;
use crate::detect::rules::RuleEngine;
use crate::window::Window;

/// Objects fetched at once per window when not told otherwise: enough to hide S3's latency,
/// few enough that memory stays at a few dozen objects.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Reads CloudTrail objects straight from the bucket.
pub struct S3Source {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// What comes before the account in every key: `[prefix/]AWSLogs/[o-ID/]`.
    accounts_root: String,
    org_id: Option<String>,
    prefix: String,
    /// From `trail.regions`; empty means discover per account.
    regions: Vec<Region>,
    /// Regions found under each account's `CloudTrail/` folder, listed once per account.
    discovered: Mutex<HashMap<AccountId, Vec<Region>>>,
    concurrency: usize,
    /// When set, the records these rules' conditions hold for are kept for them.
    rules: Option<Arc<RuleEngine>>,
}

/// Whether a failed read is of an object no retry will bring back.
fn object_unreadable_for_good(code: Option<&str>) -> bool {
    matches!(code, Some("NoSuchKey" | "InvalidObjectState"))
}

fn s3_failed<E, R>(call: &'static str, bucket: &str, key: &str, e: SdkError<E, R>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    SourceError::S3 {
        call,
        url: format!("s3://{bucket}/{key}"),
        // No code means the call never got an answer from S3 (network, credentials, timeout).
        code: e.code().unwrap_or("no service error code").to_string(),
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// Midnight of each UTC day that `window` overlaps.
fn days_of(window: &Window) -> Vec<Timestamp> {
    window
        .split_by_day()
        .iter()
        .map(|w| w.start.day_start())
        .collect()
}

impl S3Source {
    /// A source over the trail's bucket. `trail` is validated with the config.
    pub fn new(client: aws_sdk_s3::Client, trail: &TrailConfig) -> Result<Self, SourceError> {
        let regions = trail
            .regions
            .iter()
            .map(|r| Region::parse(r).map_err(|e| SourceError::Scan(format!("trail.regions: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let prefix = if trail.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", trail.prefix)
        };
        let org = trail
            .org_id
            .as_ref()
            .map(|o| format!("{o}/"))
            .unwrap_or_default();
        Ok(S3Source {
            client,
            bucket: trail.bucket.clone(),
            accounts_root: format!("{prefix}AWSLogs/{org}"),
            org_id: trail.org_id.clone(),
            prefix,
            regions,
            discovered: Mutex::new(HashMap::new()),
            concurrency: DEFAULT_CONCURRENCY,
            rules: None,
        })
    }

    /// Also keeps, per window, the records that `rules`' conditions hold for.
    pub fn with_rules(mut self, rules: Arc<RuleEngine>) -> Self {
        self.rules = (!rules.is_empty()).then_some(rules);
        self
    }

    /// Objects fetched at once within one window.
    pub fn with_concurrency(mut self, objects_at_once: usize) -> Self {
        self.concurrency = objects_at_once.max(1);
        self
    }

    fn day_folder(&self, account: &AccountId, region: &Region, day: Timestamp) -> String {
        format!(
            "{}{}",
            self.prefix,
            day_prefix(self.org_id.as_deref(), account, region, day)
        )
    }

    /// The folder names right under `prefix` (one delimiter level), every page of them.
    async fn folders(
        &self,
        prefix: &str,
        report: &mut ScanReport,
    ) -> Result<Vec<String>, SourceError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            report.s3_list_calls += 1;
            let page = page.map_err(|e| s3_failed("ListObjectsV2", &self.bucket, prefix, e))?;
            for p in page.common_prefixes() {
                let name = p.prefix().and_then(|p| p.strip_prefix(prefix));
                if let Some(name) = name.and_then(|n| n.strip_suffix('/')) {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The account's regions: configured, or discovered once from its `CloudTrail/` folder.
    async fn regions_of(
        &self,
        account: &AccountId,
        report: &mut ScanReport,
    ) -> Result<Vec<Region>, SourceError> {
        if !self.regions.is_empty() {
            return Ok(self.regions.clone());
        }
        if let Some(known) = self
            .discovered
            .lock()
            .ok()
            .and_then(|d| d.get(account).cloned())
        {
            return Ok(known);
        }
        let folder = format!("{}{account}/CloudTrail/", self.accounts_root);
        let mut regions = Vec::new();
        for name in self.folders(&folder, report).await? {
            match Region::parse(&name) {
                Ok(r) => regions.push(r),
                Err(_) => {
                    report.objects_bad.insert(
                        format!("s3://{}/{folder}{name}/", self.bucket),
                        "not a region folder; not read".into(),
                    );
                }
            }
        }
        if let Ok(mut d) = self.discovered.lock() {
            d.insert(account.clone(), regions.clone());
        }
        Ok(regions)
    }

    /// Lists one day folder of one region and keeps the log objects delivered in `window`.
    async fn list_day(
        &self,
        account: &AccountId,
        region: &Region,
        day: Timestamp,
        window: &Window,
        chosen: &mut Vec<String>,
        report: &mut ScanReport,
    ) -> Result<(), SourceError> {
        let folder = self.day_folder(account, region, day);
        // Every log key of the folder starts with this, then the fixed-width delivery minute.
        let stem = format!("{folder}{account}_CloudTrail_{region}_");
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&folder);
        if window.start > day {
            // Keys sort by delivery minute: skip the part of the day before the window.
            request = request.start_after(format!("{stem}{}", window.start.compact()));
        }
        let mut pages = request.into_paginator().send();
        'pages: while let Some(page) = pages.next().await {
            report.s3_list_calls += 1;
            let page = page.map_err(|e| s3_failed("ListObjectsV2", &self.bucket, &folder, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let name = key.rsplit('/').next().unwrap_or(key);
                match parse_object_name(name) {
                    Some(o) if o.kind == ObjectKind::Log && o.account == *account => {
                        if o.delivered >= window.end && key.starts_with(&stem) {
                            // Every later key of the folder was delivered later still.
                            break 'pages;
                        }
                        if window.contains(o.delivered) {
                            chosen.push(key.to_string());
                        }
                    }
                    Some(o) if o.kind == ObjectKind::Log => {
                        report.objects_bad.insert(
                            format!("s3://{}/{key}", self.bucket),
                            format!(
                                "named for account {}, in the folder of {account}; not read",
                                o.account
                            ),
                        );
                    }
                    Some(_) => report.objects_not_events += 1,
                    None => report.files_not_logs += 1,
                }
            }
        }
        Ok(())
    }

    /// Fetches one object and folds it. A failed fetch stops the window unless the object
    /// is gone for good.
    async fn read_and_fold(
        &self,
        key: String,
        account: &AccountId,
        window: &Window,
        shared: Arc<WindowShared>,
    ) -> Result<Partial, SourceError> {
        let url = format!("s3://{}/{key}", self.bucket);
        let mut part = Partial::default();
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await;
        let output = match got {
            Ok(o) => o,
            Err(e) if object_unreadable_for_good(e.code()) => {
                let code = e.code().unwrap_or_default().to_string();
                part.report
                    .objects_bad
                    .insert(url, format!("cannot read: {code}"));
                return Ok(part);
            }
            Err(e) => return Err(s3_failed("GetObject", &self.bucket, &key, e)),
        };
        let bytes = output.body.collect().await.map_err(|e| SourceError::S3 {
            call: "GetObject",
            url: url.clone(),
            code: "body read failed".into(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
        let bytes = Vec::from(bytes.into_bytes());
        let (account, window) = (account.clone(), *window);
        // Decompressing and parsing is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            let object = ObjectRef {
                shown: &url,
                named: true,
            };
            fold_object(object, &bytes, &account, &window, &shared, &mut part);
            part
        })
        .await
        .map_err(|e| SourceError::Scan(format!("folding an S3 object stopped: {e}")))
    }
}

#[async_trait]
impl ActivitySource for S3Source {
    /// The account folders under `[prefix/]AWSLogs/[o-ID/]`.
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError> {
        let mut report = ScanReport::default();
        let folders = self.folders(&self.accounts_root, &mut report).await?;
        let mut accounts: Vec<AccountId> = folders
            .iter()
            .filter_map(|name| AccountId::parse(name).ok())
            .collect();
        if accounts.is_empty() && self.org_id.is_none() {
            if let Some(org) = folders.iter().find(|f| f.starts_with("o-")) {
                return Err(SourceError::Scan(format!(
                    "s3://{}/{} holds an organization trail ({org}/); set trail.org_id = \"{org}\"",
                    self.bucket, self.accounts_root
                )));
            }
        }
        accounts.sort();
        accounts.dedup();
        Ok(accounts)
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError> {
        let mut report = ScanReport::default();
        let mut chosen = Vec::new();
        for region in self.regions_of(account, &mut report).await? {
            for day in days_of(window) {
                self.list_day(account, &region, day, window, &mut chosen, &mut report)
                    .await?;
            }
        }
        report.objects_listed = chosen.len() as u64;
        tracing::debug!(
            objects = chosen.len(),
            list_calls = report.s3_list_calls,
            "S3 objects chosen"
        );

        let shared = Arc::new(WindowShared::new(self.rules.clone()));
        let mut reads = futures::stream::iter(chosen)
            .map(|key| self.read_and_fold(key, account, window, shared.clone()))
            .buffer_unordered(self.concurrency);
        let mut total = Partial::default();
        total.report = report;
        while let Some(part) = reads.next().await {
            total.absorb(part?);
        }
        let (rows, report, rule_records) = total.finish();
        Ok(ActivityBatch {
            account: account.clone(),
            window: *window,
            rows,
            report,
            rule_records: self.rules.as_ref().map(|_| rule_records),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn a_window_across_midnight_touches_two_days() {
        let w = Window::new(t("2024-03-01T23:30:00Z"), t("2024-03-02T00:30:00Z")).unwrap();
        assert_eq!(
            days_of(&w),
            vec![t("2024-03-01T00:00:00Z"), t("2024-03-02T00:00:00Z")]
        );
        let w = Window::new(t("2024-03-01T23:00:00Z"), t("2024-03-02T00:00:00Z")).unwrap();
        assert_eq!(
            days_of(&w),
            vec![t("2024-03-01T00:00:00Z")],
            "the end is excluded"
        );
    }

    #[test]
    fn only_gone_or_archived_objects_are_skipped() {
        assert!(object_unreadable_for_good(Some("NoSuchKey")));
        assert!(object_unreadable_for_good(Some("InvalidObjectState")));
        for code in [
            Some("AccessDenied"),
            Some("SlowDown"),
            Some("InternalError"),
            None,
        ] {
            assert!(!object_unreadable_for_good(code), "{code:?}");
        }
    }

    #[test]
    fn keys_start_under_prefix_and_org() {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let trail = TrailConfig {
            bucket: "trail-bucket".into(),
            prefix: "org/logs".into(),
            org_id: Some("o-abc123defg".into()),
            regions: vec!["eu-west-1".into()],
        };
        let s = S3Source::new(aws_sdk_s3::Client::from_conf(conf), &trail).unwrap();
        let a = AccountId::parse("111122223333").unwrap();
        let r = Region::parse("eu-west-1").unwrap();
        assert_eq!(
            s.day_folder(&a, &r, t("2024-01-02T03:04:00Z")),
            "org/logs/AWSLogs/o-abc123defg/111122223333/CloudTrail/eu-west-1/2024/01/02/"
        );
        assert_eq!(s.accounts_root, "org/logs/AWSLogs/o-abc123defg/");
    }
}
