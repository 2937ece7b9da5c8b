//! What a rule keeps from one hunt window to the next, so that the hunt's windows do not
//! become blind spots:
//!
//! - a threshold or cardinality rule keeps each group's records of the last `window` (plus
//!   [`DELIVERY_SLACK`]) before the hunt window's end (its tail), so that a burst that
//!   straddles two hunt windows is counted whole in the second; records up to the last one of
//!   a finding are not kept, so a burst is reported once, not again with each later record;
//! - a rule with a schedule (`every`) that is not due keeps all of its groups, and is
//!   evaluated over them when it is.
//!
//! Kept groups are plain data ([`SavedGroup`]) that the store holds as JSON, with a size
//! limit: tails beyond it are dropped oldest first and counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::eval::{Group, Series};
use super::evidence::EvidenceBuilder;
use super::model::RuleKind;
use crate::cloudtrail::{Span, Timestamp};

/// Hunt windows are cut by delivery time and rules count by eventTime; a record can reach a
/// later window up to CloudTrail's delivery delay after it happened (about 5 minutes on
/// average, not guaranteed). Tails reach this much further back, so that a late record still
/// meets the records of its burst.
pub const DELIVERY_SLACK: Span = Span::minutes(20);

/// One group of a rule as it is kept between windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedGroup {
    /// The group's values, then (new_terms) the term's.
    pub key: Vec<String>,
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub evidence: EvidenceBuilder,
    pub series: SavedSeries,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SavedSeries {
    None,
    /// (second, records in it).
    Times {
        times: Vec<(i64, u64)>,
    },
    /// The distinct values, and (second, index into `values`).
    Points {
        values: Vec<String>,
        points: Vec<(i64, u32)>,
    },
}

impl SavedGroup {
    fn of(key: &[String], group: &Group) -> SavedGroup {
        SavedGroup {
            key: key.to_vec(),
            count: group.count,
            first_seen: group.first_seen,
            last_seen: group.last_seen,
            evidence: group.evidence.clone(),
            series: match &group.series {
                Series::None => SavedSeries::None,
                Series::Times(times) => SavedSeries::Times {
                    times: times.iter().map(|(t, n)| (*t, *n)).collect(),
                },
                Series::Points { values, points, .. } => SavedSeries::Points {
                    values: values.clone(),
                    points: points.iter().copied().collect(),
                },
            },
        }
    }

    /// The group back in the engine's form, or `None` when its series does not fit the rule's
    /// kind (the rule was changed since it was kept) or points at values it does not have.
    pub(super) fn restore(self, kind: &RuleKind) -> Option<(Vec<String>, Group)> {
        let series = match (kind, self.series) {
            (RuleKind::Threshold { .. }, SavedSeries::Times { times }) => {
                Series::Times(times.into_iter().collect())
            }
            (RuleKind::Cardinality { .. }, SavedSeries::Points { values, points }) => {
                if points.iter().any(|(_, id)| *id as usize >= values.len()) {
                    return None;
                }
                let ids = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i as u32))
                    .collect();
                Series::Points {
                    values,
                    ids,
                    points: points.into_iter().collect(),
                }
            }
            (RuleKind::Match { .. } | RuleKind::NewTerms { .. }, SavedSeries::None) => Series::None,
            _ => return None,
        };
        let group = Group {
            count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            evidence: self.evidence,
            series,
        };
        Some((self.key, group))
    }
}

/// Every group as it is, sorted by key.
pub(super) fn save_all(groups: &HashMap<Vec<String>, Group>) -> Vec<SavedGroup> {
    let mut saved: Vec<SavedGroup> = groups.iter().map(|(k, g)| SavedGroup::of(k, g)).collect();
    saved.sort_by(|a, b| a.key.cmp(&b.key));
    saved
}

/// The JSON size of `saved`, as the store will hold it.
pub(super) fn size_of(saved: &[SavedGroup]) -> usize {
    serde_json::to_vec(saved).map_or(usize::MAX, |v| v.len())
}

/// What each group of an evaluated rule keeps for the next window: the records after
/// `end - window - DELIVERY_SLACK` (only those can share an interval with a later record) that
/// come after the last record of the group's finding, if it fired. Match and new_terms rules keep nothing:
/// they decide per window, and new terms have their own history. Returns the kept groups and
/// how many were dropped to stay under `max_bytes`.
pub(super) fn save_tails(
    kind: &RuleKind,
    groups: &HashMap<Vec<String>, Group>,
    fired: &HashMap<Vec<String>, Timestamp>,
    end: Timestamp,
    max_bytes: usize,
) -> (Vec<SavedGroup>, u64) {
    let window = match kind {
        RuleKind::Threshold { window, .. } | RuleKind::Cardinality { window, .. } => {
            window.as_seconds()
        }
        RuleKind::Match { .. } | RuleKind::NewTerms { .. } => return (Vec::new(), 0),
    };
    let mut kept = Vec::new();
    for (key, group) in groups {
        let after = fired.get(key).map_or(i64::MIN, |t| t.unix());
        let from = end
            .unix()
            .saturating_sub(window)
            .saturating_sub(DELIVERY_SLACK.as_seconds())
            .max(after);
        if let Some(tail) = tail(key, group, from) {
            kept.push(tail);
        }
    }
    // Newest first, so that what the limit drops is what a later record is least likely to
    // join; then back in key order.
    kept.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
    let mut size: usize = 2;
    let mut fits = 0;
    for group in &kept {
        let bytes = serde_json::to_vec(group).map_or(usize::MAX, |v| v.len() + 1);
        if size.saturating_add(bytes) > max_bytes {
            break;
        }
        size += bytes;
        fits += 1;
    }
    let dropped = (kept.len() - fits) as u64;
    kept.truncate(fits);
    kept.sort_by(|a, b| a.key.cmp(&b.key));
    (kept, dropped)
}

/// The records of `group` strictly after second `from`, or `None` if there are none.
fn tail(key: &[String], group: &Group, from: i64) -> Option<SavedGroup> {
    let (series, count, first, last) = match &group.series {
        Series::Times(times) => {
            let kept: BTreeMap<i64, u64> = times
                .range(from.saturating_add(1)..)
                .map(|(t, n)| (*t, *n))
                .collect();
            let count = kept.values().sum();
            let (first, last) = (*kept.keys().next()?, *kept.keys().next_back()?);
            let times = kept.into_iter().collect();
            (SavedSeries::Times { times }, count, first, last)
        }
        Series::Points { values, points, .. } => {
            let kept: Vec<(i64, u32)> = points
                .range((from.saturating_add(1), 0)..)
                .copied()
                .collect();
            let (first, last) = (kept.first()?.0, kept.last()?.0);
            // Renumber the values the tail still uses, in their first-use order.
            let used: BTreeSet<u32> = kept.iter().map(|(_, id)| *id).collect();
            let renumber: HashMap<u32, u32> = used
                .iter()
                .enumerate()
                .map(|(new, old)| (*old, new as u32))
                .collect();
            let values = used.iter().map(|id| values[*id as usize].clone()).collect();
            let points = kept.iter().map(|(t, id)| (*t, renumber[id])).collect();
            let count = kept.len() as u64;
            (SavedSeries::Points { values, points }, count, first, last)
        }
        Series::None => return None,
    };
    Some(SavedGroup {
        key: key.to_vec(),
        count,
        first_seen: Timestamp::from_unix(first),
        last_seen: Timestamp::from_unix(last),
        // The evidence lists cannot be split by time; they come along whole, and a later
        // finding's lists may name a record from before its burst.
        evidence: group.evidence.clone(),
        series,
    })
}
