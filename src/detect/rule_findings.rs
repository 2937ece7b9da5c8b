//! Rules in the hunt: a window's kept records through the rule engine, new terms checked
//! against their history in the baseline store, and what fired turned into findings that go
//! through the same outbox and sinks as every other finding.
//!
//! A new_terms rule's history is kept as baseline pairs: the "principal" is
//! `rule:<id>` plus the group's values, the "action" the term's values, the outcome `term`,
//! and the pair expires `history` after it was last seen. So both stores keep it, with TTL,
//! and a window redone after a stop finds the same terms new under the same finding ids.

use std::collections::HashMap;

use serde::Serialize;

use super::rules::{Evidence, Rule, RuleEngine, RuleHit, RuleKind, RuleSet, TermCandidate};
use super::Mode;
use crate::alert::{finding_id, Finding, FindingKind, Level, PrincipalRef, Reason, Severity};
use crate::baseline::{BaselineStore, PairKey, PairState, PairWrite, StoreError};
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
    /// Windows the source could not run rules for (the Athena source, for now).
    pub windows_without_rules: u64,
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
    }
}

/// The rules' share of a window: findings to stage, history to commit.
#[derive(Debug, Default)]
pub struct RuleDetection {
    pub findings: Vec<Finding>,
    pub pairs: Vec<PairWrite>,
    pub stats: RuleStats,
}

/// Where the findings of one window come from.
pub struct RuleWindow<'a> {
    pub account: &'a AccountId,
    pub window: &'a Window,
    pub now: Timestamp,
    pub levels: &'a LevelThresholds,
}

/// Runs `rules` over the kept `records` of one window. In learn mode new terms are
/// remembered and nothing is reported.
pub async fn detect_rules(
    rules: &RuleSet,
    records: &[String],
    store: &dyn BaselineStore,
    at: &RuleWindow<'_>,
    mode: Mode,
) -> Result<RuleDetection, StoreError> {
    let mut engine = RuleEngine::new(rules);
    let mut out = RuleDetection::default();
    for text in records {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => engine.observe(&v),
            Err(_) => out.stats.records_unreadable += 1,
        }
    }
    let result = engine.finish();
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
    let new_terms = new_terms(rules, &result.term_candidates, store, at.account).await?;
    for (candidate, write, is_new) in new_terms {
        if is_new {
            out.stats.terms_new += 1;
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
    Ok(out)
}

fn history_key(c: &TermCandidate) -> PairKey {
    let mut principal = format!("rule:{}", c.rule_id);
    for (_, value) in &c.group {
        principal.push('\u{1f}');
        principal.push_str(value);
    }
    PairKey {
        principal,
        action: c.term.join("\u{1f}"),
        outcome: TERM.to_string(),
    }
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
