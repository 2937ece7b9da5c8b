//! The Activity row: one distinct (principal, action, outcome) of one account in one window,
//! with the context an analyst needs, and the counters of how it was read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cloudtrail::{AccountId, Action, Outcome, Principal, Timestamp};
use crate::window::Window;

/// A bounded set of example values: keeps the `CAP` smallest distinct ones, so the same
/// events give the same samples whatever order they were read in (and whichever source read
/// them), and counts how many were left out, so a busy principal cannot grow a row without
/// limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Samples {
    pub values: BTreeSet<String>,
    /// Values left out because the set was full (a value left out twice counts twice).
    pub more: u64,
}

impl Samples {
    pub const CAP: usize = 16;

    pub fn add(&mut self, value: &str) {
        if self.wants(value) {
            self.insert(value.to_string());
        }
    }

    /// Adds what another set kept. Its strings are moved, not copied: merging the samples of
    /// every worker and window allocates nothing for the values that stay.
    pub fn merge(&mut self, other: Samples) {
        self.more += other.more;
        for v in other.values {
            if self.wants(&v) {
                self.insert(v);
            }
        }
    }

    /// Whether `value` is to be inserted; counts it in `more` when the set is full.
    fn wants(&mut self, value: &str) -> bool {
        // Full, and after the largest kept value: not kept and not there already. One
        // comparison, where the lookup below takes several (every record of a busy row
        // brings a new eventID).
        if self.values.len() >= Self::CAP
            && self.values.last().is_some_and(|last| value > last.as_str())
        {
            self.more += 1;
            return false;
        }
        if self.values.contains(value) {
            return false;
        }
        if self.values.len() < Self::CAP {
            return true;
        }
        self.more += 1;
        // Full: keep the value only if it sorts before the largest kept one.
        self.values.last().is_some_and(|last| value < last.as_str())
    }

    /// Inserts a value [`Samples::wants`], making room for it when the set is full.
    fn insert(&mut self, value: String) {
        if self.values.len() >= Self::CAP {
            self.values.pop_last();
        }
        self.values.insert(value);
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.values.iter().cloned().collect()
    }
}

/// One distinct (principal, action, outcome) in a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub principal: Principal,
    pub action: Action,
    pub outcome: Outcome,
    pub count: u64,
    pub first_time: Timestamp,
    pub last_time: Timestamp,
    pub regions: Samples,
    pub source_ips: Samples,
    pub user_agents: Samples,
    pub error_codes: Samples,
    pub event_ids: Samples,
    /// `readOnly` of the calls, when CloudTrail said.
    pub read_only: Option<bool>,
    /// Console sign-ins among the calls that used no MFA.
    #[serde(default)]
    pub logins_without_mfa: u64,
    /// Calls made with an EC2 instance's role session (session name `i-...`): the role's
    /// credentials as the instance metadata service hands them out.
    #[serde(default)]
    pub instance_calls: u64,
}

impl Activity {
    /// Folds another row for the same key into this one.
    pub fn merge(&mut self, other: Activity) {
        self.count += other.count;
        self.logins_without_mfa += other.logins_without_mfa;
        self.instance_calls += other.instance_calls;
        self.first_time = self.first_time.min(other.first_time);
        self.last_time = self.last_time.max(other.last_time);
        self.regions.merge(other.regions);
        self.source_ips.merge(other.source_ips);
        self.user_agents.merge(other.user_agents);
        self.error_codes.merge(other.error_codes);
        self.event_ids.merge(other.event_ids);
        self.read_only = match (self.read_only, other.read_only) {
            (Some(a), Some(b)) => Some(a && b),
            (a, b) => a.or(b),
        };
    }
}

/// How the rows of a batch were read: what was opened, skipped and why. Every record either
/// lands in a row or in one of these counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Objects found in the source (counted once per run, not per window).
    pub objects_found: u64,
    /// Objects whose delivery time lies in the hunted windows (or that have no delivery time
    /// and were read whole): the only ones opened.
    pub objects_listed: u64,
    /// Objects opened and read.
    pub objects_read: u64,
    /// Digest and Insight objects recognised and skipped.
    pub objects_not_events: u64,
    /// Files that are not CloudTrail logs at all (by name: `.html`, `.csv`, ...).
    pub files_not_logs: u64,
    /// Objects that failed to read, by path, with the reason. Records read before the failure
    /// are kept.
    pub objects_bad: BTreeMap<String, String>,
    pub bytes_read: u64,
    /// S3 list requests (pages) the bucket scan made; zero for other sources.
    #[serde(default)]
    pub s3_list_calls: u64,
    pub records: u64,
    /// Records already seen in this run (same eventID).
    pub records_duplicate: u64,
    /// Records of files without a delivery time whose eventTime is outside the window.
    pub records_outside_window: u64,
    /// Records of other accounts in files without an account in their name.
    pub records_other_account: u64,
    /// Records that could not be decoded, by reason.
    pub records_bad: BTreeMap<String, u64>,
    /// Records with no principal, by reason.
    pub records_no_principal: BTreeMap<String, u64>,
}

impl ScanReport {
    pub fn merge(&mut self, other: ScanReport) {
        self.objects_found += other.objects_found;
        self.objects_listed += other.objects_listed;
        self.objects_read += other.objects_read;
        self.objects_not_events += other.objects_not_events;
        self.files_not_logs += other.files_not_logs;
        self.objects_bad.extend(other.objects_bad);
        self.bytes_read += other.bytes_read;
        self.s3_list_calls += other.s3_list_calls;
        self.records += other.records;
        self.records_duplicate += other.records_duplicate;
        self.records_outside_window += other.records_outside_window;
        self.records_other_account += other.records_other_account;
        for (k, v) in other.records_bad {
            *self.records_bad.entry(k).or_default() += v;
        }
        for (k, v) in other.records_no_principal {
            *self.records_no_principal.entry(k).or_default() += v;
        }
    }

    /// Records that became activity.
    pub fn records_used(&self) -> u64 {
        let lost: u64 = self.records_bad.values().sum::<u64>()
            + self.records_no_principal.values().sum::<u64>()
            + self.records_duplicate
            + self.records_outside_window
            + self.records_other_account;
        self.records.saturating_sub(lost)
    }
}

/// The activity of one account in one window.
#[derive(Clone, Debug)]
pub struct ActivityBatch {
    pub account: AccountId,
    pub window: Window,
    pub rows: Vec<Activity>,
    pub report: ScanReport,
    /// The text of the window's records that some rule's condition holds for; `None` when
    /// the source was not asked to keep them, or cannot.
    pub rule_records: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_the_smallest_values_whatever_the_order() {
        let values: Vec<String> = (0..40).map(|i| format!("10.0.0.{i:02}")).collect();
        let mut forward = Samples::default();
        let mut backward = Samples::default();
        for v in &values {
            forward.add(v);
        }
        for v in values.iter().rev() {
            backward.add(v);
        }
        assert_eq!(forward.values, backward.values);
        assert_eq!(forward.values.len(), Samples::CAP);
        assert_eq!(
            forward.values.first().map(String::as_str),
            Some("10.0.0.00")
        );
        assert_eq!(forward.more, 24);
    }
}
