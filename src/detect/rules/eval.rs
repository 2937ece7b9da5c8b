//! Running rules over the records of one hunt window.
//!
//! The caller feeds every record of the window to [`RuleEngine::observe`], in any order, then
//! calls [`RuleEngine::finish`]. Records no rule's `when` holds for cost a hash lookup on
//! `eventName` and the few rules that pin no event name; only matching records are kept, and
//! only as much of them as the rule kind needs:
//!
//! - match and new_terms: a count, first/last time and the evidence lists;
//! - threshold: additionally a count per second of eventTime (CloudTrail's resolution), so a
//!   group costs at most one entry per distinct second however many calls it makes;
//! - cardinality: additionally the distinct (second, value) pairs.
//!
//! Both series are capped at [`MAX_SERIES`] entries per group; what a cap drops is counted in
//! [`EngineStats::truncated`]. A hunt window of a day has 86,400 seconds, so threshold rules
//! reach the cap only over longer windows.
//!
//! A record delivered twice (same `eventID`, `eventName` and `eventTime`) counts once. Records
//! with no readable `eventTime` cannot be placed in time and are counted, not used.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::carry::{self, SavedGroup};
use super::evidence::{Evidence, EvidenceBuilder, Facts};
use super::field::Key;
use super::load::RuleSet;
use super::model::{Rule, RuleKind};
use super::peaks::{densest, most_distinct, Peak};
use crate::cloudtrail::{Principal, Record, Timestamp};

/// Most entries of a group's time series (threshold: seconds; cardinality: (second, value)).
pub const MAX_SERIES: usize = 100_000;
/// Most distinct values a cardinality hit lists.
pub const MAX_DISTINCT_LISTED: usize = 50;
/// Most values one record contributes to a cardinality field that crosses arrays.
const MAX_VALUES_PER_RECORD: usize = 16;

/// A match, threshold or cardinality rule that fired for one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    pub rule_id: String,
    /// `(key, value)` per `group_by` key; a key the record lacks has the value `""`.
    pub group: Vec<(String, String)>,
    /// Records of the group that matched `when` in the hunt window (cardinality: those that
    /// had the counted field).
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Threshold and cardinality: the densest window (the first, if several tie).
    pub peak: Option<Peak>,
    /// Cardinality: the distinct values within the peak, sorted, at most 50.
    pub distinct: Vec<String>,
    pub evidence: Evidence,
}

/// A value (or tuple) of a new_terms rule's `terms`, seen for a group in the hunt window; it is
/// a finding only if the caller's history has not seen it for the group within `history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TermCandidate {
    pub rule_id: String,
    pub group: Vec<(String, String)>,
    pub term: Vec<String>,
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub evidence: Evidence,
}

/// What [`RuleEngine::finish_scheduled`] did with one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRun {
    pub rule_id: String,
    /// Whether the rule was evaluated in this window (its hits are in the output).
    pub evaluated: bool,
    /// Evaluated before it was due, because what it kept grew past the limit.
    pub early: bool,
    /// The groups that fired, with the time of the last record their finding covers.
    pub fired: Vec<(Vec<String>, Timestamp)>,
    /// The groups kept for later windows.
    pub saved: Vec<SavedGroup>,
    /// Groups that could have been kept but did not fit under the limit (oldest first).
    pub dropped: u64,
}

/// What was skipped or cut, so nothing is lost silently.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Records given to `observe`.
    pub records: u64,
    /// Records some enabled rule's `when` held for.
    pub matched: u64,
    /// Matching records without a readable `eventTime`.
    pub no_event_time: u64,
    /// Matching records already counted (same `eventID`, `eventName`, `eventTime`).
    pub duplicates: u64,
    /// Per rule: matching records that lacked a term (new_terms) or the counted field
    /// (cardinality).
    pub missing_value: BTreeMap<String, u64>,
    /// Per rule: series entries dropped at the per-group cap.
    pub truncated: BTreeMap<String, u64>,
}

/// Everything the rules found in one hunt window, sorted by rule id, then group, then term.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleOutput {
    pub hits: Vec<RuleHit>,
    pub term_candidates: Vec<TermCandidate>,
    pub stats: EngineStats,
}

#[derive(Default)]
pub(super) enum Series {
    #[default]
    None,
    /// Records per second.
    Times(BTreeMap<i64, u64>),
    /// Distinct (second, value id), with the values interned.
    Points {
        values: Vec<String>,
        ids: HashMap<String, u32>,
        points: BTreeSet<(i64, u32)>,
    },
}

pub(super) struct Group {
    pub(super) count: u64,
    pub(super) first_seen: Timestamp,
    pub(super) last_seen: Timestamp,
    pub(super) evidence: EvidenceBuilder,
    pub(super) series: Series,
}

struct Running {
    rule: Rule,
    /// `eventSource` values the rule's `when` requires, checked before the full condition.
    sources: Option<BTreeSet<String>>,
    /// Group values, then (new_terms) the term values.
    groups: HashMap<Vec<String>, Group>,
}

/// Runs the enabled rules of a [`RuleSet`] over one hunt window.
pub struct RuleEngine {
    rules: Vec<Running>,
    by_event_name: HashMap<String, Vec<usize>>,
    any_event_name: Vec<usize>,
    seen_ids: HashSet<String>,
    matched: Vec<usize>,
    stats: EngineStats,
}

fn key_value(key: &Key, record: &Value, principal: Option<&Principal>) -> Option<String> {
    match key {
        Key::Principal => principal.map(|p| p.key.clone()),
        Key::Path(path) => path.first_text(record),
    }
}

fn principal_of(record: &Value) -> Option<Principal> {
    let decoded = Record::deserialize(record).ok()?;
    Principal::of(&decoded, "").ok()
}

impl RuleEngine {
    pub fn new(set: &RuleSet) -> RuleEngine {
        RuleEngine::with(set, |_| true)
    }

    /// An engine for the enabled rules `run` accepts.
    pub fn with(set: &RuleSet, run: impl Fn(&Rule) -> bool) -> RuleEngine {
        let mut engine = RuleEngine {
            rules: Vec::new(),
            by_event_name: HashMap::new(),
            any_event_name: Vec::new(),
            seen_ids: HashSet::new(),
            matched: Vec::new(),
            stats: EngineStats::default(),
        };
        let mut enabled: Vec<&Rule> = set.enabled().filter(|r| run(r)).collect();
        enabled.sort_by(|a, b| a.id.cmp(&b.id));
        for (index, rule) in enabled.into_iter().enumerate() {
            match rule.when.required_values("eventName") {
                Some(names) => {
                    for name in names {
                        engine.by_event_name.entry(name).or_default().push(index);
                    }
                }
                None => engine.any_event_name.push(index),
            }
            engine.rules.push(Running {
                rule: rule.clone(),
                sources: rule.when.required_values("eventSource"),
                groups: HashMap::new(),
            });
        }
        engine
    }

    /// Whether a record named `event_name` could concern any rule: the cheap test a reader
    /// makes before it decodes a record for [`RuleEngine::wants`].
    pub fn may_want(&self, event_name: &str) -> bool {
        !self.any_event_name.is_empty() || self.by_event_name.contains_key(event_name)
    }

    /// Whether some enabled rule's condition holds for `record`. Readers that work in
    /// parallel share one engine for this and keep only the records it wants.
    pub fn wants(&self, record: &Value) -> bool {
        let mut matched = Vec::new();
        self.matching(record, &mut matched);
        !matched.is_empty()
    }

    /// The indexes of the rules whose condition holds for `record`.
    fn matching(&self, record: &Value, matched: &mut Vec<usize>) {
        let name = record.get("eventName").and_then(Value::as_str);
        let indexed = name
            .and_then(|n| self.by_event_name.get(n))
            .map_or(&[][..], Vec::as_slice);
        let source = record.get("eventSource").and_then(Value::as_str);
        for &i in indexed.iter().chain(&self.any_event_name) {
            let running = &self.rules[i];
            let source_ok = match (&running.sources, source) {
                (None, _) => true,
                (Some(set), Some(s)) => set.contains(s),
                (Some(_), None) => false,
            };
            if source_ok && running.rule.when.holds(record) {
                matched.push(i);
            }
        }
    }

    /// Whether any rule is enabled at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Offers one record of the hunt window to every enabled rule.
    pub fn observe(&mut self, record: &Value) {
        self.stats.records += 1;
        let name = record.get("eventName").and_then(Value::as_str);
        let mut matched = std::mem::take(&mut self.matched);
        matched.clear();
        self.matching(record, &mut matched);
        self.matched = matched;
        if self.matched.is_empty() {
            return;
        }
        self.stats.matched += 1;
        let Some(time) = record
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(|t| Timestamp::parse(t).ok())
        else {
            self.stats.no_event_time += 1;
            return;
        };
        if let Some(id) = record.get("eventID").and_then(Value::as_str) {
            // The name and time guard against exports that reuse ids for different events.
            let key = format!("{id}\n{}\n{}", name.unwrap_or(""), time.unix());
            if !self.seen_ids.insert(key) {
                self.stats.duplicates += 1;
                return;
            }
        }
        let facts = Facts::of(record, time, principal_of(record));
        for &i in &self.matched {
            self.rules[i].add(record, &facts, &mut self.stats);
        }
    }

    /// Decides which groups fired. The result does not depend on the order of `observe` calls.
    pub fn finish(self) -> RuleOutput {
        let mut out = RuleOutput {
            stats: self.stats,
            ..RuleOutput::default()
        };
        for running in &self.rules {
            running.evaluate(&mut out);
        }
        out
    }

    /// Puts back the groups a rule kept from earlier windows (see [`super::carry`]), before
    /// this window's records are observed. Returns how many groups were resumed; groups of a
    /// rule that is not running are ignored.
    pub fn resume(&mut self, rule_id: &str, saved: Vec<SavedGroup>) -> u64 {
        let Some(running) = self.rules.iter_mut().find(|r| r.rule.id == rule_id) else {
            return 0;
        };
        let mut resumed = 0;
        for group in saved {
            if let Some((key, group)) = group.restore(&running.rule.kind) {
                running.groups.insert(key, group);
                resumed += 1;
            }
        }
        resumed
    }

    /// Like [`RuleEngine::finish`], for a hunt that keeps rule state between windows: rules
    /// `due` says are not due keep all their groups for a later window; the others are
    /// evaluated and keep only what a later window could still add to (see
    /// [`super::carry`]). A rule whose kept groups would exceed `max_bytes` is evaluated now
    /// rather than dropping any of them.
    pub fn finish_scheduled(
        self,
        due: &dyn Fn(&Rule) -> bool,
        end: Timestamp,
        max_bytes: usize,
    ) -> (RuleOutput, Vec<RuleRun>) {
        let mut out = RuleOutput {
            stats: self.stats,
            ..RuleOutput::default()
        };
        let mut runs = Vec::new();
        for running in self.rules {
            let mut run = RuleRun {
                rule_id: running.rule.id.clone(),
                evaluated: due(&running.rule),
                early: false,
                fired: Vec::new(),
                saved: Vec::new(),
                dropped: 0,
            };
            if !run.evaluated {
                let kept = carry::save_all(&running.groups);
                if carry::size_of(&kept) <= max_bytes {
                    run.saved = kept;
                    runs.push(run);
                    continue;
                }
                run.evaluated = true;
                run.early = true;
            }
            let fired = running.evaluate(&mut out);
            let (saved, dropped) =
                carry::save_tails(&running.rule.kind, &running.groups, &fired, end, max_bytes);
            run.saved = saved;
            run.dropped = dropped;
            let mut fired: Vec<(Vec<String>, Timestamp)> = fired.into_iter().collect();
            fired.sort();
            run.fired = fired;
            runs.push(run);
        }
        (out, runs)
    }
}

impl Running {
    fn add(&mut self, record: &Value, facts: &Facts<'_>, stats: &mut EngineStats) {
        let rule = &self.rule;
        let principal = facts.principal.as_ref();
        let mut key: Vec<String> = rule
            .group_by
            .iter()
            .map(|k| key_value(k, record, principal).unwrap_or_default())
            .collect();
        let mut values = Vec::new();
        let mut missing = false;
        match &rule.kind {
            RuleKind::NewTerms { terms, .. } => {
                for term in terms {
                    match key_value(term, record, principal) {
                        Some(v) => key.push(v),
                        None => missing = true,
                    }
                }
            }
            RuleKind::Cardinality { field, .. } => {
                values = match field {
                    Key::Principal => principal.map(|p| vec![p.key.clone()]).unwrap_or_default(),
                    Key::Path(path) => path.texts(record, MAX_VALUES_PER_RECORD),
                };
                missing = values.is_empty();
            }
            RuleKind::Match { .. } | RuleKind::Threshold { .. } => {}
        }
        if missing {
            *stats.missing_value.entry(rule.id.clone()).or_default() += 1;
            return;
        }
        let group = self.groups.entry(key).or_insert_with(|| Group {
            count: 0,
            first_seen: facts.time,
            last_seen: facts.time,
            evidence: EvidenceBuilder::default(),
            series: match rule.kind {
                RuleKind::Threshold { .. } => Series::Times(BTreeMap::new()),
                RuleKind::Cardinality { .. } => Series::Points {
                    values: Vec::new(),
                    ids: HashMap::new(),
                    points: BTreeSet::new(),
                },
                _ => Series::None,
            },
        });
        group.count += 1;
        group.first_seen = group.first_seen.min(facts.time);
        group.last_seen = group.last_seen.max(facts.time);
        group.evidence.add(facts);
        let second = facts.time.unix();
        let mut dropped = 0u64;
        match &mut group.series {
            Series::None => {}
            Series::Times(times) => {
                if let Some(n) = times.get_mut(&second) {
                    *n += 1;
                } else if times.len() < MAX_SERIES {
                    times.insert(second, 1);
                } else {
                    dropped += 1;
                }
            }
            Series::Points {
                values: names,
                ids,
                points,
            } => {
                for v in values {
                    let id = match ids.get(&v) {
                        Some(id) => *id,
                        None if names.len() < MAX_SERIES => {
                            let id = names.len() as u32;
                            ids.insert(v.clone(), id);
                            names.push(v);
                            id
                        }
                        None => {
                            dropped += 1;
                            continue;
                        }
                    };
                    if points.len() < MAX_SERIES || points.contains(&(second, id)) {
                        points.insert((second, id));
                    } else {
                        dropped += 1;
                    }
                }
            }
        }
        if dropped > 0 {
            *stats.truncated.entry(rule.id.clone()).or_default() += dropped;
        }
    }

    /// Adds what fired to `out`, and returns the groups that fired with the time of the last
    /// record their finding covers (the peak's, for threshold and cardinality).
    fn evaluate(&self, out: &mut RuleOutput) -> HashMap<Vec<String>, Timestamp> {
        let rule = &self.rule;
        let split = rule.group_by.len();
        let mut fired = HashMap::new();
        let mut groups: Vec<(&Vec<String>, &Group)> = self.groups.iter().collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        for (key, group) in groups {
            let labelled: Vec<(String, String)> = rule
                .group_by
                .iter()
                .zip(key)
                .map(|(k, v)| (k.name().to_string(), v.clone()))
                .collect();
            let hit = |peak: Option<Peak>, distinct: Vec<String>| RuleHit {
                rule_id: rule.id.clone(),
                group: labelled.clone(),
                count: group.count,
                first_seen: group.first_seen,
                last_seen: group.last_seen,
                peak,
                distinct,
                evidence: group.evidence.build(),
            };
            match (&rule.kind, &group.series) {
                (RuleKind::Match { min_count }, _) if group.count >= *min_count => {
                    out.hits.push(hit(None, Vec::new()));
                    fired.insert(key.clone(), group.last_seen);
                }
                (RuleKind::Threshold { window, min_count }, Series::Times(times)) => {
                    if let Some(peak) = densest(times, window.as_seconds()) {
                        if peak.count >= *min_count {
                            fired.insert(key.clone(), peak.last);
                            out.hits.push(hit(Some(peak), Vec::new()));
                        }
                    }
                }
                (
                    RuleKind::Cardinality {
                        window,
                        min_distinct,
                        ..
                    },
                    Series::Points { values, points, .. },
                ) => {
                    if let Some((peak, ids)) =
                        most_distinct(points, values.len(), window.as_seconds())
                    {
                        if peak.count >= *min_distinct {
                            let mut distinct: Vec<String> = ids
                                .into_iter()
                                .map(|i| values[i as usize].clone())
                                .collect();
                            distinct.sort();
                            distinct.truncate(MAX_DISTINCT_LISTED);
                            fired.insert(key.clone(), peak.last);
                            out.hits.push(hit(Some(peak), distinct));
                        }
                    }
                }
                (RuleKind::NewTerms { min_count, .. }, _) if group.count >= *min_count => {
                    out.term_candidates.push(TermCandidate {
                        rule_id: rule.id.clone(),
                        group: labelled.clone(),
                        term: key[split..].to_vec(),
                        count: group.count,
                        first_seen: group.first_seen,
                        last_seen: group.last_seen,
                        evidence: group.evidence.build(),
                    });
                }
                // Below the count; or (never) a series that does not follow the rule's kind.
                _ => {}
            }
        }
        fired
    }
}
