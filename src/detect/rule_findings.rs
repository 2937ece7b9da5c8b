//! Rules in the hunt: a window's kept records through the rule engine, new terms checked
//! against their history in the baseline store, and what fired turned into findings that go
//! through the same outbox and sinks as every other finding.
//!
//! A new_terms rule's history is kept as baseline pairs: the "principal" is
//! `rule:<id>` plus the group's values, the "action" the term's values, the outcome `term`,
//! and the pair expires `history` after it was last seen. So both stores keep it, with TTL,
//! and a window redone after a stop finds the same terms new under the same finding ids.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::rule_state::{self, RuleState, Standing};
use super::rules::{
    Evidence, Rule, RuleEngine, RuleHit, RuleKind, RuleRun, RuleSet, TermCandidate,
};
use super::Mode;
use crate::alert::{finding_id, Finding, FindingKind, Level, PrincipalRef, Reason, Severity};
use crate::baseline::{BaselineStore, Commit, PairKey, PairState, PairWrite, StoreError};
use crate::cloudtrail::{AccountId, IdentityType, Span, Timestamp};
use crate::config::LevelThresholds;
use crate::window::Window;

/// The outcome class of rule-history pairs, apart from `success`, `denied` and the rest.
const TERM: &str = "term";

/// What the rules did in one window, for the run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Records some rule's condition held for.
    pub records_matched: u64,
    /// Match, threshold and cardinality rules that fired (one per group).
    pub hits: u64,
    /// new_terms values seen in the window, and how many of them were new.
    pub terms_seen: u64,
    pub terms_new: u64,
    /// Kept records that were not JSON on the second reading (should never happen).
    pub records_unreadable: u64,
    /// Matching records without a readable eventTime: no rule could place them.
    pub records_without_time: u64,
    /// Matching records a new_terms or cardinality rule could not count: the term or the
    /// counted field was missing.
    pub values_missing: u64,
    /// Events a threshold or cardinality rule dropped at its per-group cap.
    pub series_truncated: u64,
    /// Windows the source could not run rules for.
    pub windows_without_rules: u64,
    /// Groups rules resumed from their state, and kept for the next window.
    pub groups_resumed: u64,
    pub groups_carried: u64,
    /// Groups a rule could have kept but that did not fit its state's size limit.
    pub groups_dropped: u64,
    /// Rules not yet due on their schedule (per window), and rules evaluated before they
    /// were due because what they kept outgrew the limit.
    pub rules_deferred: u64,
    pub rules_evaluated_early: u64,
    /// Rules skipped because their stored state already covered the window (a run that
    /// stopped between the rules' state and the watermark).
    pub rules_already_done: u64,
    /// Stored rule states that could not be read (the rule started afresh).
    pub states_unreadable: u64,
}

impl RuleStats {
    pub fn merge(&mut self, o: &RuleStats) {
        self.records_matched += o.records_matched;
        self.hits += o.hits;
        self.terms_seen += o.terms_seen;
        self.terms_new += o.terms_new;
        self.records_unreadable += o.records_unreadable;
        self.records_without_time += o.records_without_time;
        self.values_missing += o.values_missing;
        self.series_truncated += o.series_truncated;
        self.windows_without_rules += o.windows_without_rules;
        self.groups_resumed += o.groups_resumed;
        self.groups_carried += o.groups_carried;
        self.groups_dropped += o.groups_dropped;
        self.rules_deferred += o.rules_deferred;
        self.rules_evaluated_early += o.rules_evaluated_early;
        self.rules_already_done += o.rules_already_done;
        self.states_unreadable += o.states_unreadable;
    }
}

/// The rules' share of a window: findings to stage, history and state to commit.
#[derive(Debug, Default)]
pub struct RuleDetection {
    pub findings: Vec<Finding>,
    pub pairs: Vec<PairWrite>,
    /// (rule id, state as JSON).
    pub states: Vec<(String, String)>,
    pub stats: RuleStats,
}

/// Where the findings of one window come from.
pub struct RuleWindow<'a> {
    pub account: &'a AccountId,
    pub window: &'a Window,
    pub now: Timestamp,
    pub levels: &'a LevelThresholds,
    /// Whether rules resume from and save their state in the store (scheduled hunts only).
    pub keep_state: bool,
}

/// Runs `rules` over the kept `records` of one window. In learn mode new terms are
/// remembered and nothing is reported. With `at.keep_state` each rule resumes from its state
/// in the store and the new states come back in [`RuleDetection::states`].
pub async fn detect_rules(
    rules: &RuleSet,
    records: &[String],
    store: &dyn BaselineStore,
    at: &RuleWindow<'_>,
    mode: Mode,
) -> Result<RuleDetection, StoreError> {
    let mut out = RuleDetection::default();
    let mut values = Vec::with_capacity(records.len());
    for text in records {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => values.push(v),
            Err(_) => out.stats.records_unreadable += 1,
        }
    }
    let mut read = if at.keep_state {
        read_states(rules, &values, store, at).await?
    } else {
        StoredStates::default()
    };
    let states = std::mem::take(&mut read.states);
    let unreadable = std::mem::take(&mut read.unreadable);
    out.stats.states_unreadable = unreadable.len() as u64;
    let mut before: HashMap<String, RuleState> = HashMap::new();
    let mut done = Vec::new();
    for (id, state) in states {
        match state.standing(at.window.end) {
            Standing::Fresh => {}
            Standing::Before(state) => {
                before.insert(id, state);
            }
            Standing::Done => done.push(id),
        }
    }
    out.stats.rules_already_done = done.len() as u64;
    let mut engine = RuleEngine::with(rules, |r| !done.contains(&r.id));
    // Rules that carried groups in: their state must be rewritten even if they carry none
    // out, or the stored groups would be resumed again and again.
    let mut carried_in: Vec<String> = Vec::new();
    for (id, state) in &mut before {
        if !state.groups.is_empty() {
            carried_in.push(id.clone());
        }
        out.stats.groups_resumed += engine.resume(id, std::mem::take(&mut state.groups));
    }
    for v in &values {
        engine.observe(v);
    }
    let end = at.window.end;
    let (result, runs) = if at.keep_state {
        let due = |r: &Rule| rule_state::due(r, before.get(&r.id), end);
        engine.finish_scheduled(&due, end, rule_state::MAX_GROUP_BYTES)
    } else {
        (engine.finish(), Vec::new())
    };
    out.stats.records_matched = result.stats.matched;
    out.stats.records_without_time = result.stats.no_event_time;
    out.stats.values_missing = result.stats.missing_value.values().sum();
    out.stats.series_truncated = result.stats.truncated.values().sum();
    out.stats.hits = result.hits.len() as u64;
    out.stats.terms_seen = result.term_candidates.len() as u64;
    if mode == Mode::Hunt {
        for hit in &result.hits {
            if let Some(rule) = rules.get(&hit.rule_id) {
                out.findings.push(hit_finding(rule, hit, at));
            }
        }
    }
    let mut new_keys: HashMap<&str, Vec<(String, Timestamp)>> = HashMap::new();
    let new_terms = new_terms(rules, &result.term_candidates, store, at.account).await?;
    for (candidate, write, is_new) in new_terms {
        if is_new {
            out.stats.terms_new += 1;
            let mut values: Vec<String> = candidate.group.iter().map(|(_, v)| v.clone()).collect();
            values.extend(candidate.term.iter().cloned());
            new_keys
                .entry(candidate.rule_id.as_str())
                .or_default()
                .push((rule_state::key_text(&values), candidate.last_seen));
            if mode == Mode::Hunt {
                if let Some(rule) = rules.get(&candidate.rule_id) {
                    out.findings.push(term_finding(rule, candidate, at));
                }
            }
        }
        if let Some(write) = write {
            out.pairs.push(write);
        }
    }
    for run in runs {
        let prior = before.remove(&run.rule_id);
        let mut fired: Vec<(String, Timestamp)> = run
            .fired
            .iter()
            .map(|(key, t)| (rule_state::key_text(key), *t))
            .collect();
        fired.extend(new_keys.remove(run.rule_id.as_str()).unwrap_or_default());
        // A rule with a schedule always writes its state down, and an unreadable state is
        // replaced rather than counted again at every window.
        let keep = unreadable.contains(&run.rule_id)
            || carried_in.contains(&run.rule_id)
            || rules.get(&run.rule_id).is_some_and(|r| r.every.is_some());
        if let Some(state) = next_state(&run, keep, prior, fired, end, &mut out.stats) {
            if state.groups.is_empty() {
                read.carrying.remove(&run.rule_id);
            } else {
                read.carrying.insert(run.rule_id.clone());
            }
            out.states.push((run.rule_id.clone(), state.to_json()));
        }
    }
    if at.keep_state && (read.rewrite_carrying || read.carrying != read.carrying_before) {
        let enabled: BTreeSet<String> = rules.enabled().map(|r| r.id.clone()).collect();
        read.carrying.retain(|id| enabled.contains(id));
        out.states.push((
            rule_state::CARRYING.to_string(),
            rule_state::carrying_json(&read.carrying),
        ));
    }
    Ok(out)
}

/// What a window read of the rules' stored states.
#[derive(Default)]
struct StoredStates {
    states: HashMap<String, RuleState>,
    /// Rules whose stored state cannot be read (they start afresh).
    unreadable: Vec<String>,
    /// The rules carrying groups, as stored before the window and as the window leaves them.
    carrying_before: BTreeSet<String>,
    carrying: BTreeSet<String>,
    /// The list was missing or unreadable: it is written whatever the window changes.
    rewrite_carrying: bool,
}

/// The stored states a window needs: those of the rules some record of the window matches, of
/// the rules with a schedule (due or not, they keep their state every window), and of the
/// rules that carry groups in (the [`rule_state::CARRYING`] list, read with them). Any other
/// rule has nothing to resume and nothing to observe, so its state is not read: most
/// account-hours have no record any rule wants. Without a readable list (an account hunted
/// before it existed), every enabled rule's state is read and the list written.
async fn read_states(
    rules: &RuleSet,
    records: &[serde_json::Value],
    store: &dyn BaselineStore,
    at: &RuleWindow<'_>,
) -> Result<StoredStates, StoreError> {
    let needed = |r: &&Rule| r.every.is_some() || records.iter().any(|v| r.when.holds(v));
    let mut ask: BTreeSet<String> = rules
        .enabled()
        .filter(needed)
        .map(|r| r.id.clone())
        .collect();
    ask.insert(rule_state::CARRYING.to_string());
    let mut found = store
        .rule_states(at.account, &ask.iter().cloned().collect::<Vec<_>>())
        .await?;
    let mut out = StoredStates::default();
    let carrying = found
        .remove(rule_state::CARRYING)
        .map(|text| rule_state::parse_carrying(&text));
    let more: Vec<String> = match carrying {
        Some(Ok(list)) => {
            out.carrying_before = list.clone();
            rules
                .enabled()
                .map(|r| &r.id)
                .filter(|id| list.contains(*id) && !ask.contains(*id))
                .cloned()
                .collect()
        }
        unknown => {
            if let Some(Err(e)) = unknown {
                tracing::warn!(account = %at.account, error = %e,
                    "the list of rules carrying groups is unreadable; every rule's state is read");
                out.unreadable.push(rule_state::CARRYING.to_string());
            }
            out.rewrite_carrying = true;
            rules
                .enabled()
                .map(|r| &r.id)
                .filter(|id| !ask.contains(*id))
                .cloned()
                .collect()
        }
    };
    if !more.is_empty() {
        found.extend(store.rule_states(at.account, &more).await?);
    }
    for (id, text) in found {
        match RuleState::parse(&text) {
            Ok(state) => {
                // Without a list, the states read are what it would have said.
                if out.rewrite_carrying && !state.groups.is_empty() {
                    out.carrying_before.insert(id.clone());
                }
                out.states.insert(id, state);
            }
            Err(e) => {
                tracing::warn!(rule = %id, account = %at.account, error = %e,
                    "the rule's stored state is unreadable; the rule starts afresh");
                out.unreadable.push(id);
            }
        }
    }
    out.carrying = out.carrying_before.clone();
    Ok(out)
}

/// The state a rule leaves after this window, or `None` when there is nothing worth a write:
/// a rule not to `keep` (scheduled, carried groups in, or unreadable before) that carries
/// nothing out and fired nothing.
fn next_state(
    run: &RuleRun,
    keep: bool,
    prior: Option<RuleState>,
    fired: Vec<(String, Timestamp)>,
    end: Timestamp,
    stats: &mut RuleStats,
) -> Option<RuleState> {
    if run.evaluated {
        stats.groups_carried += run.saved.len() as u64;
        stats.groups_dropped += run.dropped;
        stats.rules_evaluated_early += u64::from(run.early);
    } else {
        stats.rules_deferred += 1;
    }
    let mut state = prior.unwrap_or_default();
    if run.evaluated {
        state.last_run = Some(end);
        if !fired.is_empty() {
            state.last_keys = fired.into_iter().take(rule_state::MAX_LAST_KEYS).collect();
        }
    }
    let fired_now = run.evaluated && !run.fired.is_empty();
    let worth = keep || !run.saved.is_empty() || fired_now;
    state.through = Some(end);
    state.groups = run.saved.clone();
    worth.then_some(state)
}

fn history_key(c: &TermCandidate) -> PairKey {
    let group: Vec<&str> = c.group.iter().map(|(_, v)| v.as_str()).collect();
    term_key(&c.rule_id, &group, &c.term)
}

fn term_key(rule_id: &str, group: &[&str], term: &[String]) -> PairKey {
    let mut principal = format!("rule:{rule_id}");
    for value in group {
        principal.push('\u{1f}');
        principal.push_str(value);
    }
    PairKey {
        principal,
        action: term.join("\u{1f}"),
        outcome: TERM.to_string(),
    }
}

/// The store writes that carry an imported Elasticsearch rule's memory over: each
/// `LastAggResult` key becomes the new_terms history of `rule` (one global group, one term, as
/// the importer writes them) seen at its time, and `LastRun` and the keys become the rule's
/// state. Keys whose history has already run out at `now` are left out and counted.
pub fn imported_memory(
    rule: &Rule,
    memory: &crate::detect::rules_import::RuleState,
    now: Timestamp,
) -> (Commit, u64) {
    let mut commit = Commit::default();
    let mut expired = 0;
    if let RuleKind::NewTerms { history, terms, .. } = &rule.kind {
        if rule.group_by.is_empty() && terms.len() == 1 {
            for (key, seen) in &memory.last_keys {
                let seen = Timestamp::from_unix(*seen);
                let expires = seen.saturating_add(*history);
                if expires <= now {
                    expired += 1;
                    continue;
                }
                commit.pairs.push(PairWrite {
                    key: term_key(&rule.id, &[], std::slice::from_ref(key)),
                    state: PairState {
                        first_seen: seen,
                        last_seen: seen,
                        count: 1,
                        days: 1,
                        expires,
                    },
                });
            }
        }
    }
    let state = RuleState {
        through: None,
        last_run: memory.last_run.map(Timestamp::from_unix),
        last_keys: memory
            .last_keys
            .iter()
            .map(|(k, t)| (k.clone(), Timestamp::from_unix(*t)))
            .collect(),
        groups: Vec::new(),
    };
    commit.rule_states.push((rule.id.clone(), state.to_json()));
    (commit, expired)
}

/// Each candidate with the history write it needs (if any) and whether it is new: unseen
/// for its group within the rule's history before this window's first sighting.
async fn new_terms<'c>(
    rules: &RuleSet,
    candidates: &'c [TermCandidate],
    store: &dyn BaselineStore,
    account: &AccountId,
) -> Result<Vec<(&'c TermCandidate, Option<PairWrite>, bool)>, StoreError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // One lookup per distinct first sighting keeps the question "known at that moment"
    // exact, and windows rarely have more than a handful.
    let mut by_time: HashMap<Timestamp, Vec<PairKey>> = HashMap::new();
    for c in candidates {
        by_time
            .entry(c.first_seen)
            .or_default()
            .push(history_key(c));
    }
    let mut known: HashMap<PairKey, PairState> = HashMap::new();
    for (at, keys) in by_time {
        known.extend(store.known_pairs(account, &keys, at).await?);
    }
    let mut out = Vec::new();
    for c in candidates {
        let Some(rule) = rules.get(&c.rule_id) else {
            continue;
        };
        let RuleKind::NewTerms { history, .. } = rule.kind else {
            continue;
        };
        let key = history_key(c);
        let before = known.get(&key);
        let expires = c.last_seen.saturating_add(history);
        // A known term is rewritten only once a tenth of its history has passed, so that a
        // term seen every hour costs a write a few times per history, not every hour.
        let refresh_after = Span::seconds((history.as_seconds() / 10).max(60));
        let write = match before {
            Some(state) if c.last_seen < state.last_seen.saturating_add(refresh_after) => None,
            _ => Some(PairWrite {
                key,
                state: PairState {
                    first_seen: before.map_or(c.first_seen, |s| s.first_seen),
                    last_seen: c.last_seen,
                    count: before.map_or(0, |s| s.count) + c.count,
                    days: before.map_or(0, |s| s.days) + 1,
                    expires,
                },
            }),
        };
        out.push((c, write, before.is_none()));
    }
    Ok(out)
}

fn severity(rule_score: u8, levels: &LevelThresholds, reason: Reason) -> Severity {
    let score = i32::from(rule_score);
    let level = if score >= levels.critical {
        Level::Critical
    } else if score >= levels.high {
        Level::High
    } else if score >= levels.medium {
        Level::Medium
    } else if score >= levels.low {
        Level::Low
    } else {
        Level::Informational
    };
    Severity {
        score: rule_score,
        level,
        reasons: vec![reason],
    }
}

/// The principal a finding is about: the group's first principal, or the group itself.
fn principal_ref(evidence: &super::rules::Evidence, group: &[(String, String)]) -> PrincipalRef {
    match &evidence.principal {
        Some(p) => PrincipalRef {
            arn: p.arn.clone(),
            kind: p.kind,
            key: p.key.clone(),
        },
        None => PrincipalRef {
            arn: None,
            kind: IdentityType::Unknown,
            key: describe_group(group),
        },
    }
}

fn describe_group(group: &[(String, String)]) -> String {
    if group.is_empty() {
        return "the account".to_string();
    }
    group
        .iter()
        .map(|(k, v)| {
            if k == "principal" {
                v.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The group's keys other than the principal, for a title: `, eventName=StopLogging`.
fn other_keys(group: &[(String, String)]) -> String {
    group
        .iter()
        .filter(|(k, _)| k != "principal")
        .map(|(k, v)| format!(", {k}={v}"))
        .collect()
}

fn group_value(group: &[(String, String)], key: &str) -> Option<String> {
    group.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn who(p: &PrincipalRef) -> String {
    match p.kind {
        IdentityType::Root => "the root user".to_string(),
        IdentityType::Unknown => p.key.clone(),
        kind => {
            let name = p
                .arn
                .as_deref()
                .and_then(|a| a.rsplit(['/', ':']).next())
                .unwrap_or(&p.key);
            format!("{kind} {name}")
        }
    }
}

/// What differs between the finding of a hit and that of a new term.
struct Fired<'a> {
    /// The facts that make the finding's id, after the rule and the account.
    facts: Vec<&'a str>,
    /// What the title says after "<rule title>: <who>".
    title_tail: String,
    detail: String,
    event_name: Option<String>,
    first_seen: Timestamp,
    last_seen: Timestamp,
    count: u64,
    evidence: &'a Evidence,
    group: &'a [(String, String)],
}

fn rule_finding(rule: &Rule, fired: Fired<'_>, at: &RuleWindow<'_>) -> Finding {
    let principal = principal_ref(fired.evidence, fired.group);
    let mut parts = vec!["rule", rule.id.as_str(), at.account.as_str()];
    parts.extend(fired.facts);
    Finding {
        id: finding_id(&parts),
        kind: FindingKind::Rule,
        title: format!("{}: {}{}", rule.title, who(&principal), fired.title_tail),
        rule: Some(rule.id.clone()),
        account: at.account.clone(),
        principal,
        action: None,
        event_source: None,
        event_name: fired.event_name,
        severity: severity(
            rule.score,
            at.levels,
            Reason {
                factor: format!("rule:{}", rule.id),
                weight: i32::from(rule.score),
                detail: fired.detail,
            },
        ),
        first_seen: fired.first_seen,
        last_seen: fired.last_seen,
        count: fired.count,
        source_ips: fired.evidence.source_ips.clone(),
        user_agents: fired.evidence.user_agents.clone(),
        regions: fired.evidence.regions.clone(),
        error_codes: fired.evidence.error_codes.clone(),
        event_ids: fired.evidence.sample_event_ids.clone(),
        window_start: at.window.start,
        window_end: at.window.end,
        detected_at: at.now,
    }
}

fn hit_finding(rule: &Rule, hit: &RuleHit, at: &RuleWindow<'_>) -> Finding {
    let what = match (&rule.kind, &hit.peak) {
        (RuleKind::Threshold { window, .. }, Some(peak)) => {
            format!("{} events within {window}", peak.count)
        }
        (RuleKind::Cardinality { window, field, .. }, Some(_)) => {
            format!("{} distinct {field} within {window}", hit.distinct.len())
        }
        _ if hit.count == 1 => "1 event".to_string(),
        _ => format!("{} events", hit.count),
    };
    // A burst is one finding from its densest window on, whatever else the window holds.
    let first = hit
        .peak
        .as_ref()
        .map_or(hit.first_seen, |p| p.first)
        .to_string();
    let mut detail = what.clone();
    if !hit.distinct.is_empty() {
        detail.push_str(&format!(": {}", hit.distinct.join(", ")));
    }
    let mut facts: Vec<&str> = hit.group.iter().map(|(_, v)| v.as_str()).collect();
    facts.push(&first);
    rule_finding(
        rule,
        Fired {
            facts,
            title_tail: format!("{} ({what})", other_keys(&hit.group)),
            detail,
            event_name: group_value(&hit.group, "eventName"),
            first_seen: hit.first_seen,
            last_seen: hit.last_seen,
            count: hit.count,
            evidence: &hit.evidence,
            group: &hit.group,
        },
        at,
    )
}

fn term_finding(rule: &Rule, c: &TermCandidate, at: &RuleWindow<'_>) -> Finding {
    let RuleKind::NewTerms { terms, history, .. } = &rule.kind else {
        unreachable!("term candidates come from new_terms rules");
    };
    let names = terms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let term_text = c.term.join(", ");
    let first = c.first_seen.to_string();
    let mut facts: Vec<&str> = c.group.iter().map(|(_, v)| v.as_str()).collect();
    facts.extend(c.term.iter().map(String::as_str));
    facts.push(&first);
    rule_finding(
        rule,
        Fired {
            facts,
            title_tail: format!(" ({names} {term_text}, not seen in {history} before)"),
            detail: format!(
                "new {names} = {term_text} for {} within {history}",
                describe_group(&c.group)
            ),
            event_name: None,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            count: c.count,
            evidence: &c.evidence,
            group: &c.group,
        },
        at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::sqlite::SqliteStore;

    const RULES: &str = r#"
[[rule]]
id = "stop"
title = "Stop"
severity = "high"
kind = "match"
when = { field = "eventName", equals = "StopLogging" }

[[rule]]
id = "burst"
title = "Burst"
severity = "low"
kind = "threshold"
window = "5m"
min_count = 3
when = { field = "eventName", equals = "StopLogging" }
"#;

    struct Fixture {
        rules: RuleSet,
        store: SqliteStore,
        account: AccountId,
        window: Window,
        levels: LevelThresholds,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                rules: RuleSet::parse(RULES, "t.toml").unwrap(),
                store: SqliteStore::open_in_memory().unwrap(),
                account: AccountId::parse("111122223333").unwrap(),
                window: Window::new(
                    Timestamp::parse("2024-05-02T10:00:00Z").unwrap(),
                    Timestamp::parse("2024-05-02T11:00:00Z").unwrap(),
                )
                .unwrap(),
                levels: LevelThresholds::default(),
            }
        }

        /// A scheduled window: rules keep state.
        fn at(&self) -> RuleWindow<'_> {
            RuleWindow {
                account: &self.account,
                window: &self.window,
                now: self.window.end,
                levels: &self.levels,
                keep_state: true,
            }
        }

        async fn detect(&self, records: &[String], at: &RuleWindow<'_>) -> RuleDetection {
            detect_rules(&self.rules, records, &self.store, at, Mode::Hunt)
                .await
                .unwrap()
        }
    }

    fn stop_record(time: &str) -> String {
        serde_json::json!({
            "eventTime": time, "eventName": "StopLogging", "eventID": time,
            "eventSource": "cloudtrail.amazonaws.com",
            "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}
        })
        .to_string()
    }

    /// A run that stopped after storing the rules' state but before moving the watermark
    /// redoes the window: rules whose state covers it are not run again (their findings and
    /// history are stored already), the others are.
    #[tokio::test]
    async fn a_window_already_in_a_rules_state_is_not_run_again_for_it() {
        let fx = Fixture::new();
        let at = fx.at();
        let records: Vec<String> = ["10:59:00", "10:59:10", "10:59:20"]
            .iter()
            .map(|t| stop_record(&format!("2024-05-02T{t}Z")))
            .collect();
        let first = fx.detect(&records, &at).await;
        assert_eq!(first.findings.len(), 2);
        let commit = Commit {
            rule_states: first.states.clone(),
            ..Commit::default()
        };
        fx.store.commit(&fx.account, &commit).await.unwrap();
        let stored: Vec<&str> = first
            .states
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| *id != rule_state::CARRYING)
            .collect();
        assert_eq!(
            stored,
            ["burst", "stop"],
            "both fired, so both keep their last keys"
        );

        let redo = fx.detect(&records, &at).await;
        assert!(redo.findings.is_empty());
        assert_eq!(redo.stats.rules_already_done, 2);

        // A replay (no state kept) runs every rule whatever the store holds.
        let replay = RuleWindow {
            keep_state: false,
            ..at
        };
        let again = fx.detect(&records, &replay).await;
        let ids = |d: &RuleDetection| d.findings.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&again),
            ids(&first),
            "the same findings under the same ids"
        );
        assert!(again.states.is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_state_is_counted_and_the_rule_starts_afresh() {
        let fx = Fixture::new();
        let commit = Commit {
            rule_states: vec![("burst".to_string(), "{not json".to_string())],
            ..Commit::default()
        };
        fx.store.commit(&fx.account, &commit).await.unwrap();
        let records = vec![stop_record("2024-05-02T10:10:00Z")];
        let out = fx.detect(&records, &fx.at()).await;
        assert_eq!(out.stats.states_unreadable, 1);
        assert_eq!(out.findings.len(), 1, "the match rule still fires");
        assert!(
            out.states.iter().any(|(id, _)| id == "burst"),
            "the unreadable state is replaced"
        );
    }

    /// A rule that carried groups in and carries none out writes its state again, so the old
    /// groups are not resumed at every later window.
    #[tokio::test]
    async fn a_tail_that_runs_out_is_cleared_from_the_store() {
        let fx = Fixture::new();
        let next =
            Window::new(fx.window.end, fx.window.end.saturating_add(Span::hours(1))).unwrap();
        let later = Window::new(next.end, next.end.saturating_add(Span::hours(1))).unwrap();
        let mut resumed = Vec::new();
        // One record near the end of the first window: carried as a tail.
        let windows = [
            (&fx.window, vec![stop_record("2024-05-02T10:59:00Z")]),
            (&next, Vec::new()),
            (&later, Vec::new()),
        ];
        for (window, records) in windows {
            let at = RuleWindow {
                window,
                now: window.end,
                ..fx.at()
            };
            let out = fx.detect(&records, &at).await;
            resumed.push(out.stats.groups_resumed);
            let commit = Commit {
                rule_states: out.states,
                ..Commit::default()
            };
            fx.store.commit(&fx.account, &commit).await.unwrap();
        }
        assert_eq!(resumed, [0, 1, 0]);
    }

    /// A store that remembers which rule states each window asked for.
    struct Asking {
        inner: SqliteStore,
        asked: std::sync::Mutex<Vec<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl BaselineStore for Asking {
        async fn cursor(&self, a: &AccountId) -> Result<crate::window::Cursor, StoreError> {
            self.inner.cursor(a).await
        }
        async fn begin_window(&self, a: &AccountId, end: Timestamp) -> Result<(), StoreError> {
            self.inner.begin_window(a, end).await
        }
        async fn known_pairs(
            &self,
            a: &AccountId,
            keys: &[PairKey],
            at: Timestamp,
        ) -> Result<HashMap<PairKey, PairState>, StoreError> {
            self.inner.known_pairs(a, keys, at).await
        }
        async fn known_principals(
            &self,
            a: &AccountId,
            keys: &[String],
        ) -> Result<HashMap<String, crate::baseline::PrincipalState>, StoreError> {
            self.inner.known_principals(a, keys).await
        }
        async fn rule_states(
            &self,
            a: &AccountId,
            rules: &[String],
        ) -> Result<HashMap<String, String>, StoreError> {
            let mut asked = rules.to_vec();
            asked.sort();
            self.asked.lock().unwrap().push(asked);
            self.inner.rule_states(a, rules).await
        }
        async fn account_since(&self, a: &AccountId) -> Result<Option<Timestamp>, StoreError> {
            self.inner.account_since(a).await
        }
        async fn commit(&self, a: &AccountId, c: &Commit) -> Result<(), StoreError> {
            self.inner.commit(a, c).await
        }
        async fn stage(&self, f: &[Finding], sinks: &[String]) -> Result<usize, StoreError> {
            self.inner.stage(f, sinks).await
        }
        async fn pending(&self, sink: &str, limit: usize) -> Result<Vec<Finding>, StoreError> {
            self.inner.pending(sink, limit).await
        }
        async fn mark_delivered(&self, sink: &str, ids: &[String]) -> Result<(), StoreError> {
            self.inner.mark_delivered(sink, ids).await
        }
    }

    /// Most account-hours have no record any rule wants: such a window reads only the list of
    /// rules carrying groups, not every rule's state. A window whose records concern a rule
    /// reads that rule's state, and a rule carrying a tail is read until the tail runs out.
    #[tokio::test]
    async fn a_window_reads_only_the_states_its_records_and_carried_groups_need() {
        let fx = Fixture::new();
        let store = Asking {
            inner: SqliteStore::open_in_memory().unwrap(),
            asked: Default::default(),
        };
        let hour = |n: i64| {
            let start = fx.window.start.saturating_add(Span::hours(n));
            Window::new(start, start.saturating_add(Span::hours(1))).unwrap()
        };
        let windows = [hour(0), hour(1), hour(2), hour(3)];
        let records = [
            // Early in the hour: nothing to carry into the next.
            vec![stop_record("2024-05-02T10:10:00Z")],
            vec![],
            // Late in the hour: the threshold rule carries a tail into the next.
            vec![stop_record("2024-05-02T12:55:00Z")],
            vec![],
        ];
        let mut resumed = Vec::new();
        for (window, records) in windows.iter().zip(records) {
            let at = RuleWindow {
                window,
                now: window.end,
                ..fx.at()
            };
            let out = detect_rules(&fx.rules, &records, &store, &at, Mode::Hunt)
                .await
                .unwrap();
            resumed.push(out.stats.groups_resumed);
            let commit = Commit {
                rule_states: out.states,
                ..Commit::default()
            };
            store.commit(&fx.account, &commit).await.unwrap();
        }
        let asked = store.asked.lock().unwrap().clone();
        let carrying = rule_state::CARRYING.to_string();
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            asked,
            [
                ids(&[&carrying, "burst", "stop"]),
                ids(&[&carrying]),
                ids(&[&carrying, "burst", "stop"]),
                ids(&[&carrying]),
                ids(&["burst"]),
            ]
        );
        assert_eq!(
            resumed,
            [0, 0, 0, 1],
            "the tail is resumed in the quiet hour after it"
        );
        let left = store
            .rule_states(&fx.account, std::slice::from_ref(&carrying))
            .await
            .unwrap();
        assert_eq!(left[&carrying], "[]", "the spent tail leaves the list");
    }
}
