//! The run summary: what one run read, skipped, found and delivered, for stderr at the end of
//! a run and (serialised) as a summary event for Splunk.
//!
//! Skips are only honest if they are shown, so every non-zero skip count is printed with its
//! reason, and each unreadable object is named.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::alert::Level;
use crate::source::ScanReport;

/// How many unreadable objects are named one by one before the rest are only counted.
const BAD_OBJECTS_NAMED: usize = 20;

/// Everything a run reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub accounts_hunted: u64,
    /// Accounts that could not be hunted, with the reason.
    pub accounts_failed: Vec<(String, String)>,
    pub windows: u64,
    pub findings_by_level: BTreeMap<Level, u64>,
    /// Findings produced by this run (the rest were pending from earlier runs).
    pub findings_new: u64,
    /// Findings delivered, by sink name.
    pub findings_delivered: BTreeMap<String, u64>,
    /// Distinct principals seen.
    pub principals: u64,
    /// Principals not hunted, by why (`AWS service`, `service-linked role`, `ignore list`).
    pub principals_ignored: BTreeMap<String, u64>,
    /// (principal, action) pairs added to or refreshed in the baseline.
    pub pairs_learned: u64,
    /// Calls that failed other than by refusal (throttled, invalid): neither learned nor alerted.
    pub calls_failed: u64,
    /// New behaviours of principals younger than `min_principal_age`: learned, not alerted.
    pub young_suppressed: u64,
    pub report: ScanReport,
    /// What the rules matched and found.
    pub rules: crate::detect::rule_findings::RuleStats,
    /// Calls and capacity the state store spent (zero for SQLite).
    pub store: crate::baseline::StoreCounters,
    /// Queries and bytes scanned, with the Athena source.
    pub athena: Option<crate::source::athena::AthenaCounters>,
    pub elapsed_seconds: f64,
}

impl RunSummary {
    /// The first lines of the summary only: the run, the objects and the records read. What
    /// `trailhound scan` prints, as it neither learns nor reports.
    pub fn render_reading(&self) -> String {
        let mut out = String::new();
        let r = &self.report;
        let elapsed = self.elapsed_seconds.max(0.0);

        let mut run = format!(
            "run: {} accounts hunted, {} windows, {elapsed:.1}s",
            self.accounts_hunted, self.windows
        );
        if elapsed > 0.0 && r.records > 0 {
            let rate = r.records as f64 / elapsed;
            let _ = write!(run, ", {rate:.0} records/s");
        }
        line(&mut out, &run);

        let bad_objects = r.objects_bad.len() as u64;
        let objects = counts(&[
            (r.objects_found, "found"),
            (r.objects_listed, "in the hunted windows"),
            (r.objects_read, "read"),
            (r.objects_not_events, "not events (digest, insight)"),
            (r.files_not_logs, "not CloudTrail logs"),
            (bad_objects, "unreadable"),
            (r.s3_list_calls, "S3 list requests"),
        ]);
        line(&mut out, &format!("objects: {objects}"));
        for (path, reason) in r.objects_bad.iter().take(BAD_OBJECTS_NAMED) {
            line(
                &mut out,
                &format!("  unreadable {}: {}", clean(path), clean(reason)),
            );
        }
        if r.objects_bad.len() > BAD_OBJECTS_NAMED {
            let more = r.objects_bad.len() - BAD_OBJECTS_NAMED;
            line(&mut out, &format!("  +{more} more unreadable objects"));
        }

        let records = counts(&[
            (r.records, "read"),
            (r.records_used(), "used"),
            (r.records_duplicate, "duplicate"),
            (r.records_outside_window, "outside window"),
            (r.records_other_account, "of other accounts"),
            (r.records_bad.values().sum(), "undecodable"),
            (r.records_no_principal.values().sum(), "without principal"),
        ]);
        line(
            &mut out,
            &format!(
                "records: {records}; {:.1} MB read",
                r.bytes_read as f64 / 1e6
            ),
        );
        by_reason(&mut out, "undecodable", &r.records_bad);
        by_reason(&mut out, "without principal", &r.records_no_principal);
        out
    }

    /// A compact human summary, a few lines, newline-terminated.
    pub fn render(&self) -> String {
        let mut out = self.render_reading();

        let ignored: u64 = self.principals_ignored.values().sum();
        let mut principals = format!("principals: {} seen", self.principals);
        if ignored > 0 {
            let _ = write!(principals, ", {ignored} ignored");
        }
        if self.pairs_learned > 0 {
            let _ = write!(principals, "; {} pairs learned", self.pairs_learned);
        }
        line(&mut out, &principals);
        by_reason(&mut out, "ignored", &self.principals_ignored);
        if self.calls_failed > 0 {
            line(
                &mut out,
                &format!(
                    "  failed calls (throttled, invalid; not learned): {}",
                    self.calls_failed
                ),
            );
        }
        if self.young_suppressed > 0 {
            line(
                &mut out,
                &format!(
                    "  new behaviours of principals younger than min_principal_age (learned, not alerted): {}",
                    self.young_suppressed
                ),
            );
        }

        let rules = &self.rules;
        if rules.records_matched > 0 || rules.terms_seen > 0 || rules.hits > 0 {
            line(
                &mut out,
                &format!(
                    "rules: {} records matched, {} hits, {} new terms of {} seen",
                    rules.records_matched, rules.hits, rules.terms_new, rules.terms_seen
                ),
            );
        }
        if rules.windows_without_rules > 0 {
            line(
                &mut out,
                &format!(
                    "  windows hunted without rules (their source kept no records for them): {}",
                    rules.windows_without_rules
                ),
            );
        }
        for (n, what) in [
            (
                rules.records_without_time,
                "matching records without a readable eventTime",
            ),
            (
                rules.values_missing,
                "matching records without the term or counted field",
            ),
            (rules.series_truncated, "events over a rule's per-group cap"),
        ] {
            if n > 0 {
                line(&mut out, &format!("  {what} (not counted by rules): {n}"));
            }
        }
        if rules.records_unreadable > 0 {
            line(
                &mut out,
                &format!(
                    "  records kept for rules but unreadable: {}",
                    rules.records_unreadable
                ),
            );
        }

        let levels: Vec<String> = Level::ALL
            .iter()
            .filter_map(|l| {
                let n = self.findings_by_level.get(l).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {}", l.name()))
            })
            .collect();
        let mut findings = if levels.is_empty() {
            "findings: none".to_string()
        } else {
            format!("findings: {}", levels.join(", "))
        };
        if self.findings_new > 0 {
            let _ = write!(findings, " ({} new this run)", self.findings_new);
        }
        line(&mut out, &findings);
        if !self.findings_delivered.is_empty() {
            let sinks: Vec<String> = self
                .findings_delivered
                .iter()
                .map(|(sink, n)| format!("{n} to {}", clean(sink)))
                .collect();
            line(&mut out, &format!("delivered: {}", sinks.join(", ")));
        }

        if let Some(a) = &self.athena {
            line(
                &mut out,
                &format!(
                    "athena: {} queries ({} activity, {} rules, {} DDL, {} failed, {} retries), {:.1} MB scanned",
                    a.queries_started,
                    a.activity_queries,
                    a.rule_queries,
                    a.ddl_statements,
                    a.queries_failed,
                    a.retries,
                    a.bytes_scanned as f64 / 1e6
                ),
            );
        }
        if self.store.calls > 0 {
            line(
                &mut out,
                &format!(
                    "state store: {} calls, {:.1} read units, {:.1} write units",
                    self.store.calls, self.store.read_units, self.store.write_units
                ),
            );
        }
        if !self.accounts_failed.is_empty() {
            let n = self.accounts_failed.len();
            line(&mut out, &format!("failed accounts: {n}"));
            for (account, reason) in &self.accounts_failed {
                line(
                    &mut out,
                    &format!("  {}: {}", clean(account), clean(reason)),
                );
            }
        }
        out
    }
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

/// `n label` pairs joined by commas; zeros left out, except that an all-zero list says `0`.
fn counts(parts: &[(u64, &str)]) -> String {
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect();
    if shown.is_empty() {
        "0".to_string()
    } else {
        shown.join(", ")
    }
}

fn by_reason(out: &mut String, what: &str, reasons: &BTreeMap<String, u64>) {
    for (reason, n) in reasons.iter().filter(|(_, n)| **n > 0) {
        line(out, &format!("  {what} ({}): {n}", clean(reason)));
    }
}

/// Reasons are error messages, sometimes multi-line, and paths come from a bucket listing;
/// keep each on its one line and keep escapes off the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_run() -> RunSummary {
        let mut report = ScanReport {
            objects_listed: 140,
            objects_read: 100,
            objects_found: 150,
            objects_not_events: 3,
            files_not_logs: 2,
            bytes_read: 12_345_678,
            s3_list_calls: 9,
            records: 5_000,
            records_duplicate: 40,
            records_outside_window: 7,
            records_other_account: 5,
            ..ScanReport::default()
        };
        for i in 0..23 {
            report.objects_bad.insert(
                format!("logs/111122223333/obj-{i:02}.json.gz"),
                format!("gzip stream ends early\n(at byte {i})"),
            );
        }
        report.records_bad.insert("not JSON".to_string(), 3);
        report.records_bad.insert("no eventTime".to_string(), 2);
        report
            .records_no_principal
            .insert("record has no userIdentity".to_string(), 4);
        RunSummary {
            accounts_hunted: 3,
            accounts_failed: vec![(
                "444455556666".to_string(),
                "AccessDenied listing the bucket".to_string(),
            )],
            windows: 4,
            findings_by_level: [(Level::Critical, 1), (Level::Low, 5)].into(),
            findings_new: 6,
            findings_delivered: [("stdout".to_string(), 6), ("splunk".to_string(), 6)].into(),
            principals: 42,
            principals_ignored: [
                ("AWS service".to_string(), 9),
                ("service-linked role".to_string(), 2),
                ("ignore list".to_string(), 1),
            ]
            .into(),
            pairs_learned: 310,
            calls_failed: 11,
            young_suppressed: 13,
            report,
            athena: None,
            rules: crate::detect::rule_findings::RuleStats {
                records_matched: 12,
                hits: 2,
                terms_seen: 5,
                terms_new: 1,
                values_missing: 3,
                ..Default::default()
            },
            store: crate::baseline::StoreCounters {
                calls: 29,
                read_units: 1165.0,
                write_units: 2.0,
            },
            elapsed_seconds: 2.5,
        }
    }

    #[test]
    fn summary_names_every_bad_object_and_skip_reason() {
        let text = busy_run().render();
        for i in 0..20 {
            let name = format!(
                "logs/111122223333/obj-{i:02}.json.gz: gzip stream ends early (at byte {i})"
            );
            assert!(text.contains(&name), "object {i} not named:\n{text}");
        }
        assert!(
            !text.contains("obj-20"),
            "only the first 20 are named:\n{text}"
        );
        assert!(text.contains("+3 more unreadable objects"), "{text}");
        for expected in [
            "150 found",
            "140 in the hunted windows",
            "100 read",
            "3 not events",
            "2 not CloudTrail logs",
            "23 unreadable",
            "9 S3 list requests",
            "5000 read",
            "4939 used",
            "40 duplicate",
            "7 outside window",
            "5 of other accounts",
            "5 undecodable",
            "undecodable (not JSON): 3",
            "undecodable (no eventTime): 2",
            "without principal (record has no userIdentity): 4",
            "12.3 MB read",
            "failed calls (throttled, invalid; not learned): 11",
            "(learned, not alerted): 13",
            "state store: 29 calls, 1165.0 read units, 2.0 write units",
            "42 seen, 12 ignored",
            "ignored (AWS service): 9",
            "ignored (service-linked role): 2",
            "ignored (ignore list): 1",
            "310 pairs learned",
            "rules: 12 records matched, 2 hits, 1 new terms of 5 seen",
            "matching records without the term or counted field (not counted by rules): 3",
            "1 critical, 5 low (6 new this run)",
            "6 to splunk, 6 to stdout",
            "444455556666: AccessDenied listing the bucket",
            "2.5s, 2000 records/s",
        ] {
            assert!(text.contains(expected), "missing `{expected}`:\n{text}");
        }
        // Each bad object stays on its own line even when its reason had a newline.
        assert!(text.lines().all(|l| !l.starts_with("(at byte")), "{text}");
    }

    #[test]
    fn quiet_run_leaves_zero_counts_out() {
        let text = RunSummary::default().render();
        assert!(
            !text.contains("unreadable") && !text.contains("failed"),
            "{text}"
        );
        assert!(text.contains("findings: none"), "{text}");
    }

    #[test]
    fn summary_serialises_levels_by_name() {
        let json = serde_json::to_value(busy_run()).expect("serialisable");
        assert_eq!(json["findings_by_level"]["critical"], 1);
        assert_eq!(json["report"]["records"], 5000);
    }
}
