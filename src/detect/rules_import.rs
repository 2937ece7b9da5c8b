//! Conversion of the Elasticsearch-era CloudTrail rules (DynamoDB items holding an Elasticsearch
//! query) into trailhound rules.
//!
//! Such a rule ran a query every few minutes, grouped the hits with a terms aggregation (by
//! `userIdentity.arn`, an access key id, a user name), and alerted on each key with at least
//! `AlertMinimumEventCount` events that had not been present within the previous
//! `AlertPeriodMinutes`. That is a trailhound `new_terms` rule over one global group:
//!
//! | Elasticsearch item                | trailhound rule                                       |
//! |-----------------------------------|-------------------------------------------------------|
//! | terms aggregation field           | `terms = [field]`, `group_by = []`                    |
//! | `AlertPeriodMinutes`              | `history`                                             |
//! | `AlertMinimumEventCount`          | `min_count`                                           |
//! | no aggregation                    | `kind = "match"`                                      |
//! | `query`                           | `[rule.when]`; the `range` on eventTime (the run window) is dropped |
//! | `RunScheduleInMinutes`            | `every` (the rule's schedule; see `rules::model`)     |
//! | `ES_Index`, `RuleType`            | comments                                              |
//! | `LastRun`, `LastAggResult`        | [`RuleState`]: `rules import --seed-state` stores it as the rule's state and new-terms history |
//!
//! Every construct that cannot be converted is reported with its place in the query
//! (`query.bool.must[2].fuzzy`) and the rule is skipped; where the meaning shifts (text
//! analysis, scoring-only clauses, the top-N keys a terms aggregation returned) the rule carries
//! a note. Every rule handed out has passed trailhound's own rule checker.
//!
//! - [`input`]: the shapes the items come in, including DynamoDB JSON;
//! - [`item`]: the attributes of one item;
//! - [`query`]: the Query text and the aggregation around the query proper;
//! - [`dsl`]: the query DSL to conditions, and [`leaf`] for the single-field queries;
//! - [`emit`]: the conditions and the TOML they are written as.

mod dsl;
#[cfg(test)]
mod dsl_tests;
mod emit;
mod input;
mod item;
mod leaf;
mod query;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::cloudtrail::Span;
use crate::detect::rules::RuleSet;

use emit::{comment_safe, Cond, NewTerms, Op, RuleSpec};
use query::Json;

/// The result of one import: the rules converted and the ones that were not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    pub rules: Vec<ImportedRule>,
    pub failures: Vec<ImportFailure>,
}

/// One converted rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRule {
    /// The trailhound rule id, derived from the RuleId and unique within the import.
    pub id: String,
    /// The Elasticsearch item's RuleId, as it was.
    pub es_rule_id: String,
    /// One `[[rule]]` table, with provenance comments above it.
    pub toml: String,
    /// Where the converted rule behaves differently from the Elasticsearch one, or what was
    /// left out; each starts with its place in the query when it has one.
    pub notes: Vec<String>,
    /// The Elasticsearch rule's memory, when the item had any.
    pub state: Option<RuleState>,
}

/// What the Elasticsearch rule remembered between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleState {
    /// `LastRun`: when it last ran, in Unix seconds.
    pub last_run: Option<i64>,
    /// `LastAggResult`: each key (a value of the rule's `terms` field) and when it was last
    /// seen, in Unix seconds.
    pub last_keys: BTreeMap<String, i64>,
}

/// An item, or one problem in it, that was not converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportFailure {
    /// The item's RuleId, or `item N` when it has none.
    pub rule_id: String,
    /// Where: a path into the Query (`query.bool.must[2].fuzzy`), an attribute (`RuleId`), or a
    /// place in the input (`input line 28 column 12`).
    pub position: String,
    pub reason: String,
}

/// The input as a whole could not be read; single bad items are [`ImportFailure`]s instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the input is empty: expected Elasticsearch rule items as JSON (an array, one item, JSON lines, or `aws dynamodb scan` output)")]
    Empty,
    #[error("the input is not rule items in JSON: line {line} column {column}: {message} near `{excerpt}`")]
    NotJson {
        line: usize,
        column: usize,
        message: String,
        excerpt: String,
    },
}

/// Converts the rule items in `text`. Fails only when the input as a whole cannot be read;
/// an item that cannot be converted becomes a failure and the others go on.
pub fn import(text: &str) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut ids = HashSet::new();
    for piece in input::read(text)? {
        match piece {
            input::Piece::Broken(failure) => report.failures.push(failure),
            input::Piece::Item { label, value } => match convert_item(value, &label, &mut ids) {
                Ok(rule) => report.rules.push(rule),
                Err(failures) => report.failures.extend(failures),
            },
        }
    }
    Ok(report)
}

/// One TOML file holding every converted rule, under a header that lists the notes and the
/// rules that were not converted.
pub fn render_file(report: &ImportReport) -> String {
    let mut out = String::new();
    out.push_str(
        "# trailhound rules converted from Elasticsearch rules (`trailhound rules import`).\n",
    );
    let _ = writeln!(
        out,
        "# {} converted, {} not converted. Rule format: src/detect/rules/model.rs.",
        report.rules.len(),
        failed_rules(report)
    );
    if report.rules.iter().any(|r| !r.notes.is_empty()) {
        out.push_str("#\n# Read these before enabling the rules:\n");
        for rule in &report.rules {
            for note in &rule.notes {
                let _ = writeln!(out, "# - {}: {}", rule.id, comment_safe(note));
            }
        }
    }
    if !report.failures.is_empty() {
        out.push_str("#\n# Not converted:\n");
        for f in &report.failures {
            let _ = writeln!(
                out,
                "# - \"{}\" at {}: {}",
                comment_safe(&f.rule_id),
                comment_safe(&f.position),
                comment_safe(&f.reason)
            );
        }
    }
    for rule in &report.rules {
        out.push('\n');
        out.push_str(&rule.toml);
    }
    out
}

fn failed_rules(report: &ImportReport) -> usize {
    report
        .failures
        .iter()
        .map(|f| f.rule_id.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// A problem at a place.
#[derive(Clone, Debug)]
struct Problem {
    position: String,
    reason: String,
}

/// What a conversion collects on its way: notes and problems.
#[derive(Default)]
struct Out {
    notes: Vec<String>,
    problems: Vec<Problem>,
    /// Why the converted condition cannot behave as it did in Elasticsearch: the rule is
    /// written, but disabled, until someone rewrites the condition.
    disable: Vec<String>,
}

impl Out {
    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn problem(&mut self, position: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            position: position.into(),
            reason: reason.into(),
        });
    }

    /// False, with a problem, when an object repeats a key: Elasticsearch refuses it, and
    /// keeping either one would silently change the rule.
    fn no_duplicates(&mut self, entries: &[(String, Json)], pos: &str) -> bool {
        let mut seen = HashSet::new();
        let mut ok = true;
        for (key, _) in entries {
            if !seen.insert(key.as_str()) {
                let at = if pos.is_empty() {
                    key.clone()
                } else {
                    format!("{pos}.{key}")
                };
                self.problem(at, format!("`{key}` appears twice in one object"));
                ok = false;
            }
        }
        ok
    }
}

fn convert_item(
    value: serde_json::Value,
    label: &str,
    ids: &mut HashSet<String>,
) -> Result<ImportedRule, Vec<ImportFailure>> {
    let fail = |rule_id: &str, problems: Vec<Problem>| -> Vec<ImportFailure> {
        problems
            .into_iter()
            .map(|p| ImportFailure {
                rule_id: rule_id.to_string(),
                position: p.position,
                reason: p.reason,
            })
            .collect()
    };
    let value = input::plain_item(value).map_err(|reason| {
        fail(
            label,
            vec![Problem {
                position: label.to_string(),
                reason,
            }],
        )
    })?;
    let item = item::read(&value)
        .map_err(|(rule_id, problems)| fail(rule_id.as_deref().unwrap_or(label), problems))?;
    let rule_id = item.rule_id.clone();
    let mut out = Out {
        notes: item.notes.clone(),
        ..Out::default()
    };
    let json = query::parse(&item.query).map_err(|p| fail(&rule_id, vec![p]))?;
    let search = query::convert(&json, &mut out);
    let spec = search.and_then(|s| Converted::new(&item, s, &mut out));
    let spec = match spec {
        Some(spec) if out.problems.is_empty() => spec,
        _ => {
            let mut problems = out.problems;
            if problems.is_empty() {
                problems.push(Problem {
                    position: "Query".into(),
                    reason: "not converted, and no reason was recorded: please report it".into(),
                });
            }
            return Err(fail(&rule_id, problems));
        }
    };
    let id = allocate_id(&rule_id, ids);
    let toml = spec.render(&item, &id, &out.disable);
    // Our own output must pass trailhound's rule checker; if it does not, that is a bug here,
    // reported for this rule rather than handed on as a file that will not load.
    if let Err(e) = RuleSet::parse(&toml, &id) {
        ids.remove(&id);
        let reason = format!("internal error: the converted rule is refused by trailhound's rule checker ({e}); please report it with this item");
        return Err(fail(
            &rule_id,
            vec![Problem {
                position: "Query".into(),
                reason,
            }],
        ));
    }
    let mut notes = out.notes;
    notes.extend(out.disable);
    Ok(ImportedRule {
        id,
        es_rule_id: rule_id,
        toml,
        notes,
        state: item.state,
    })
}

/// The rule's parts once converted.
struct Converted {
    when: emit::Group,
    terms: Option<Vec<String>>,
    history: Option<(String, u64)>,
    min_count: u64,
}

impl Converted {
    fn new(item: &item::Item, search: query::Search, out: &mut Out) -> Option<Converted> {
        let mut when = search.when;
        let mut min_count = match item.alert_minimum_event_count {
            Some(0) => {
                out.note("AlertMinimumEventCount 0 read as 1: a key is only seen with at least one event");
                1
            }
            Some(n) => n,
            None => {
                out.note("no AlertMinimumEventCount: min_count 1");
                1
            }
        };
        let (terms, history) = match &search.terms {
            Some(terms) => {
                if let Some(n) = terms.min_doc_count.filter(|&n| n > min_count) {
                    out.note(format!("min_count {n}: the aggregation's min_doc_count is larger than AlertMinimumEventCount ({min_count})"));
                    min_count = n;
                }
                let Some(minutes) = item.alert_period_minutes.filter(|&m| m > 0) else {
                    out.problem("AlertPeriodMinutes", "missing or 0: a key is new only relative to a period, and this rule gives none");
                    return None;
                };
                let history =
                    Span::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60)).to_string();
                if min_count > 1 {
                    out.note(format!("min_count {min_count}: Elasticsearch counted the events over the {minutes} minutes before each run; trailhound counts them within each hunt window"));
                }
                if when.is_everything() {
                    // The aggregation only ever saw events holding the field.
                    when.all.push(Cond::field(&terms.path, Op::Exists(true)));
                }
                (Some(vec![terms.path.clone()]), Some((history, minutes)))
            }
            None => {
                if let Some(m) = item.alert_period_minutes {
                    out.note(format!("no terms aggregation: a `match` rule counting matching events per hunt window; AlertPeriodMinutes ({m}) was Elasticsearch's counting period"));
                }
                if when.is_everything() {
                    out.note("`[rule.when]` cannot be empty: `eventTime exists`, which every CloudTrail record has, stands for \"every event\"");
                    when.all.push(Cond::field("eventTime", Op::Exists(true)));
                }
                (None, None)
            }
        };
        Some(Converted {
            when,
            terms,
            history,
            min_count,
        })
    }

    fn render(&self, item: &item::Item, id: &str, disable: &[String]) -> String {
        let mut comments = vec![format!(
            "From the Elasticsearch rule \"{}\"{}{}.",
            item.rule_id,
            item.rule_type
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
            item.es_index
                .as_deref()
                .map(|i| format!(", index {i}"))
                .unwrap_or_default(),
        )];
        if item.run_schedule_minutes == Some(0) {
            comments.push(
                "RunScheduleInMinutes was 0: trailhound evaluates it at every hunt window."
                    .to_string(),
            );
        }
        for why in disable {
            comments.push(format!("Imported disabled: {why}"));
        }
        let new_terms = match (&self.terms, &self.history) {
            (Some(terms), Some((history, minutes))) => Some(NewTerms {
                terms,
                history,
                period_minutes: *minutes,
            }),
            _ => None,
        };
        emit::render(&RuleSpec {
            comments: &comments,
            id,
            title: &title(item),
            text: &text(item),
            enabled: disable.is_empty(),
            every_minutes: item.run_schedule_minutes.filter(|m| *m > 0),
            new_terms,
            min_count: self.min_count,
            when: &self.when,
        })
    }
}

/// The RuleId when it reads as a title (it has spaces), else the Description's first sentence.
fn title(item: &item::Item) -> String {
    let id = item.rule_id.trim();
    let sentence = item.description.as_deref().and_then(|d| {
        let d = d.trim();
        let end = [". ", ".\n", "\n"]
            .iter()
            .filter_map(|sep| d.find(sep))
            .min()
            .unwrap_or(d.len());
        let s = d[..end].trim().trim_end_matches('.');
        (!s.is_empty()).then_some(s)
    });
    let chosen = match sentence {
        Some(s) if !id.contains(' ') => s,
        _ => id,
    };
    let title = input::cut(comment_safe(chosen).trim(), 120);
    if title.is_empty() {
        // A RuleId of control characters only: the id is all that is left.
        "Imported Elasticsearch rule".to_string()
    } else {
        title
    }
}

fn text(item: &item::Item) -> String {
    let parts: Vec<&str> = [item.alert_text.as_deref(), item.description.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        item.rule_id.clone()
    } else {
        parts.join("\n\n")
    }
}

/// `[a-z0-9][a-z0-9._-]{0,63}` from the RuleId: lower case, other characters to `-` (runs
/// collapsed), `es-` in front when it would not start with a letter or digit, and `-2`, `-3`
/// when already taken.
fn allocate_id(rule_id: &str, taken: &mut HashSet<String>) -> String {
    let mut slug = String::new();
    for c in rule_id.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && slug.ends_with('-')) {
            slug.push(c);
        }
    }
    let slug = slug.trim_matches('-');
    let mut base = if slug.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        slug.to_string()
    } else {
        format!("es-{slug}")
    };
    let fit = |s: &str, max: usize| s[..s.len().min(max)].trim_end_matches('-').to_string();
    base = fit(&base, 64);
    if base == "es-" || base == "es" {
        base = "es-rule".into();
    }
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        let suffix = format!("-{n}");
        id = format!("{}{suffix}", fit(&base, 64 - suffix.len()));
        n += 1;
    }
    taken.insert(id.clone());
    id
}
