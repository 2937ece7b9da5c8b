//! How CloudTrail hands events over: every few minutes per account and region, one or more
//! objects holding what happened since; most events a few minutes old, a few an hour late,
//! now and then one delivered twice.
//!
//! Also keeps the hunt hour honest: its routine part is trimmed to what the history already
//! holds, so the only new behaviour in it is what was injected on purpose.

use std::collections::{BTreeMap, HashSet};

use crate::cloudtrail::{Action, Outcome, Principal, Record, Timestamp};

use super::event::{Event, Kind};
use super::org::Org;
use super::rng::Rng;

/// An object about to be written: an account and region, its delivery minute, the random
/// part of its name, and indexes into the event list.
pub struct Object {
    pub account: usize,
    pub region: &'static str,
    pub delivered: Timestamp,
    pub rand: String,
    pub events: Vec<usize>,
}

/// Deliveries not yet cut into objects, by account, region and delivery minute.
pub type Deliveries = BTreeMap<(usize, &'static str, i64), Vec<usize>>;

/// Largest number of records in one object; CloudTrail splits bigger batches.
const MAX_RECORDS: usize = 250;

/// The first delivery tick at or after `t` for a stream whose ticks fall on minutes
/// congruent to `offset` modulo 5.
fn next_tick(t: i64, offset: i64) -> i64 {
    let mut minute = (t + 59).div_euclid(60);
    while (minute + offset).rem_euclid(5) != 0 {
        minute += 1;
    }
    minute * 60
}

/// Assigns every event its delivery (or two) inside `[first, end)`. `events` must be in
/// their final order, since the draws follow it.
pub fn assign(events: &[Event], seed: u64, first: Timestamp, end: Timestamp) -> Deliveries {
    let mut rng = Rng::stream(seed, "delivery");
    let mut out = Deliveries::new();
    let mut offsets: BTreeMap<(usize, &str), i64> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let offset = *offsets.entry((e.account, e.region)).or_insert_with(|| {
            Rng::stream(seed, &format!("tick/{}/{}", e.account, e.region)).below(5) as i64
        });
        let lag = match e.kind {
            // Injected events arrive promptly so they belong to the hunt hour.
            Kind::Attack(_) | Kind::Novelty => rng.range(30, 300),
            Kind::Routine if rng.chance(0.002) => rng.range(30 * 60, 90 * 60),
            Kind::Routine => rng.range(40, 600),
        };
        let delivered = next_tick(e.time.unix() + lag, offset);
        let twice = e.kind == Kind::Routine && rng.chance(0.0008);
        let mut put = |at: i64| {
            if at >= first.unix() && at < end.unix() {
                out.entry((e.account, e.region, at)).or_default().push(i);
            }
        };
        put(delivered);
        if twice {
            put(delivered + 300);
        }
    }
    out
}

/// What the baseline learns from one record: account, principal, action and outcome.
fn activity(e: &Event, org: &Org) -> Option<(usize, String, String, Outcome)> {
    let record = Record::parse(&e.json).ok()?;
    let principal = Principal::of(&record, org.account_id(e.account)).ok()?;
    let action = Action::new(&record.event_source, &record.event_name).key();
    Some((
        e.account,
        principal.key,
        action,
        Outcome::of(record.error_code.get()),
    ))
}

/// Drops routine events delivered from `hunt_start` on whose activity the history does not
/// hold, and routine denials (never learned), so the hunt hour's routine is known behaviour.
pub fn keep_known_in_hunt(
    deliveries: &mut Deliveries,
    events: &[Event],
    org: &Org,
    hunt_start: Timestamp,
) {
    let mut seen = HashSet::new();
    for ((_, _, at), list) in deliveries.iter() {
        if *at < hunt_start.unix() {
            seen.extend(list.iter().filter_map(|&i| activity(&events[i], org)));
        }
    }
    for ((_, _, at), list) in deliveries.iter_mut() {
        if *at < hunt_start.unix() {
            continue;
        }
        list.retain(|&i| {
            let e = &events[i];
            if e.kind != Kind::Routine {
                return true;
            }
            activity(e, org).is_some_and(|a| a.3 != Outcome::Denied && seen.contains(&a))
        });
    }
    deliveries.retain(|_, list| !list.is_empty());
}

/// Cuts deliveries into objects: large batches are split, and now and then one delivery
/// comes as two objects in the same minute, as CloudTrail does.
pub fn objects(deliveries: Deliveries, events: &[Event], seed: u64) -> Vec<Object> {
    let mut rng = Rng::stream(seed, "objects");
    let mut out = Vec::with_capacity(deliveries.len());
    for ((account, region, at), mut list) in deliveries {
        list.sort_by(|&a, &b| {
            (events[a].time, &events[a].id).cmp(&(events[b].time, &events[b].id))
        });
        let mut size = MAX_RECORDS;
        if list.len() >= 2 && rng.chance(0.04) {
            size = list.len().div_ceil(2);
        }
        for chunk in list.chunks(size) {
            out.push(Object {
                account,
                region,
                delivered: Timestamp::from_unix(at),
                rand: rng.alnum(16),
                events: chunk.to_vec(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_at_or_after_the_time_on_the_stream_offset() {
        let t = Timestamp::parse("2024-06-03T10:02:30Z").unwrap().unix();
        let tick = next_tick(t, 0);
        assert!(tick >= t);
        assert_eq!(
            Timestamp::from_unix(tick).to_string(),
            "2024-06-03T10:05:00Z"
        );
        assert_eq!(
            Timestamp::from_unix(next_tick(t, 2)).to_string(),
            "2024-06-03T10:03:00Z"
        );
        assert_eq!(next_tick(tick, 0), tick);
    }
}
