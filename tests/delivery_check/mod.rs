//! What the fault, crash and concurrency tests check of a run's deliveries against a run with
//! nothing wrong: every finding arrived (at least once), none arrived under a second id, and,
//! where the test asks, none arrived twice.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use trailhound::alert::Finding;

/// The findings in a JSON-lines file, complete lines only: a line torn by a kill is not a
/// delivery.
pub fn delivered(path: &Path) -> Vec<Finding> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What a finding is about, without its id: two ids for one of these would be one finding
/// reported twice.
pub fn about(f: &Finding) -> String {
    format!(
        "{} {} {} {:?} {:?} {}",
        f.kind.name(),
        f.account,
        f.principal.key,
        f.action,
        f.rule,
        f.first_seen
    )
}

/// How the deliveries of a run compare with a run that had nothing go wrong.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Ids the reference delivered that never arrived.
    pub lost: Vec<String>,
    /// Ids that arrived but the reference never delivered.
    pub extra: Vec<String>,
    /// Facts that arrived under more than one id.
    pub under_two_ids: Vec<String>,
    /// Ids that arrived more than once, with how often.
    pub repeated: BTreeMap<String, usize>,
}

impl Comparison {
    /// Compares `got` (every delivery, repeats included) with the ids of the reference.
    pub fn of(reference: &BTreeSet<String>, got: &[Finding]) -> Comparison {
        let mut times: BTreeMap<String, usize> = BTreeMap::new();
        let mut ids_per_fact: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in got {
            *times.entry(f.id.clone()).or_default() += 1;
            ids_per_fact
                .entry(about(f))
                .or_default()
                .insert(f.id.clone());
        }
        let ids: BTreeSet<String> = times.keys().cloned().collect();
        Comparison {
            lost: reference.difference(&ids).cloned().collect(),
            extra: ids.difference(reference).cloned().collect(),
            under_two_ids: ids_per_fact
                .into_iter()
                .filter(|(_, ids)| ids.len() > 1)
                .map(|(fact, _)| fact)
                .collect(),
            repeated: times.into_iter().filter(|(_, n)| *n > 1).collect(),
        }
    }

    /// Panics, saying what differed, unless every reference finding arrived under its one id
    /// and nothing else did; repeats of one id are allowed (at-least-once delivery).
    pub fn assert_complete(&self, case: &str) {
        assert!(
            self.lost.is_empty() && self.extra.is_empty() && self.under_two_ids.is_empty(),
            "{case}: lost {:?}, not in the reference {:?}, under two ids {:?}",
            self.lost,
            self.extra,
            self.under_two_ids
        );
    }

    /// As [`Comparison::assert_complete`], and no finding arrived twice.
    pub fn assert_exactly_once(&self, case: &str) {
        self.assert_complete(case);
        assert!(
            self.repeated.is_empty(),
            "{case}: delivered more than once: {:?}",
            self.repeated
        );
    }
}

/// The ids of `findings`.
pub fn ids(findings: &[Finding]) -> BTreeSet<String> {
    findings.iter().map(|f| f.id.clone()).collect()
}
