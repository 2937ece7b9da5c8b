//! The densest interval of a group's records: where a threshold or cardinality rule peaks.
//!
//! Both scans slide a window `[t, t + window)` whose start is each record's time in turn (the
//! densest interval always starts at a record), so they are linear in the series after sorting.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cloudtrail::Timestamp;

/// The densest interval `[t, t + window)` of a threshold or cardinality group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Peak {
    /// Threshold: records in the interval; cardinality: distinct values in it.
    pub count: u64,
    /// eventTime of the interval's first and last record.
    pub first: Timestamp,
    pub last: Timestamp,
}

/// The interval `[t, t + window)` holding the most records; the earliest such.
pub fn densest(times: &BTreeMap<i64, u64>, window: i64) -> Option<Peak> {
    let points: Vec<(i64, u64)> = times.iter().map(|(t, n)| (*t, *n)).collect();
    let mut best: Option<Peak> = None;
    let (mut end, mut sum) = (0, 0u64);
    for start in 0..points.len() {
        while end < points.len() && points[end].0 < points[start].0.saturating_add(window) {
            sum += points[end].1;
            end += 1;
        }
        if best.as_ref().is_none_or(|b| sum > b.count) {
            best = Some(Peak {
                count: sum,
                first: Timestamp::from_unix(points[start].0),
                last: Timestamp::from_unix(points[end - 1].0),
            });
        }
        sum -= points[start].1;
    }
    best
}

/// The interval `[t, t + window)` holding the most distinct values, and those values' ids.
pub fn most_distinct(
    points: &BTreeSet<(i64, u32)>,
    value_count: usize,
    window: i64,
) -> Option<(Peak, Vec<u32>)> {
    let points: Vec<(i64, u32)> = points.iter().copied().collect();
    let mut inside = vec![0u32; value_count];
    let mut distinct = 0u64;
    let mut best: Option<(u64, usize, usize)> = None;
    let mut end = 0;
    for start in 0..points.len() {
        while end < points.len() && points[end].0 < points[start].0.saturating_add(window) {
            let slot = &mut inside[points[end].1 as usize];
            if *slot == 0 {
                distinct += 1;
            }
            *slot += 1;
            end += 1;
        }
        if best.is_none_or(|(d, _, _)| distinct > d) {
            best = Some((distinct, start, end));
        }
        let slot = &mut inside[points[start].1 as usize];
        *slot -= 1;
        if *slot == 0 {
            distinct -= 1;
        }
    }
    let (count, start, end) = best?;
    let ids: BTreeSet<u32> = points[start..end].iter().map(|p| p.1).collect();
    Some((
        Peak {
            count,
            first: Timestamp::from_unix(points[start].0),
            last: Timestamp::from_unix(points[end - 1].0),
        },
        ids.into_iter().collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densest_interval_is_the_earliest_of_equals() {
        let times = BTreeMap::from([(0, 2), (50, 1), (400, 2), (410, 1)]);
        let peak = densest(&times, 60).unwrap();
        assert_eq!(
            (peak.count, peak.first.unix(), peak.last.unix()),
            (3, 0, 50)
        );
    }
}
