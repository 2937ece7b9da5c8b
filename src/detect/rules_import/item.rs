//! The attributes of one Elasticsearch rule item, typed. Numbers may come as JSON numbers or
//! numeric strings (DynamoDB's `N`, or hand-written items); every attribute problem of an item
//! is reported at once.

use std::collections::BTreeMap;

use serde_json::Value;

use super::input::{cut, kind};
use super::{Problem, RuleState};

pub(super) struct Item {
    pub rule_id: String,
    pub rule_type: Option<String>,
    pub run_schedule_minutes: Option<u64>,
    pub alert_period_minutes: Option<u64>,
    pub alert_minimum_event_count: Option<u64>,
    pub alert_text: Option<String>,
    pub description: Option<String>,
    pub es_index: Option<String>,
    /// The query's JSON text.
    pub query: String,
    pub state: Option<RuleState>,
    pub notes: Vec<String>,
}

/// Reads an item in plain form. On failure: the RuleId when there was one, and the problems.
pub(super) fn read(value: &Value) -> Result<Item, (Option<String>, Vec<Problem>)> {
    let Value::Object(map) = value else {
        let problem = Problem {
            position: "item".into(),
            reason: format!(
                "expected an object with RuleId, Query, ..., got {}",
                kind(value)
            ),
        };
        return Err((None, vec![problem]));
    };
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut bad = |name: &str, reason: String| {
        problems.push(Problem {
            position: name.to_string(),
            reason,
        })
    };
    let present = |name: &str| map.get(name).filter(|v| !v.is_null());

    let rule_id = match present("RuleId") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            bad(
                "RuleId",
                format!("expected a non-empty string, got {}", kind(other)),
            );
            None
        }
        None => {
            bad("RuleId", "missing: every rule needs its RuleId".into());
            None
        }
    };
    let mut text = |name: &str| match present(name) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            bad(name, format!("expected a string, got {}", kind(other)));
            None
        }
    };
    let rule_type = text("RuleType");
    let alert_text = text("AlertText");
    let description = text("Description");
    let es_index = text("ES_Index");
    let query = match present("Query") {
        Some(Value::String(s)) => Some(s.clone()),
        // Stored as a map rather than as text: the same query, already parsed.
        Some(q @ Value::Object(_)) => {
            notes.push(
                "Query was stored as a JSON object rather than a string: read as the query itself"
                    .into(),
            );
            Some(q.to_string())
        }
        Some(other) => {
            bad(
                "Query",
                format!("expected the query as a JSON string, got {}", kind(other)),
            );
            None
        }
        None => {
            bad("Query", "missing: the rule has no query to convert".into());
            None
        }
    };
    let mut count = |name: &str| match present(name) {
        None => None,
        Some(v) => match whole(v) {
            Some(n) if n <= MAX_COUNT => Some(n),
            _ => {
                bad(
                    name,
                    format!(
                        "expected a whole number up to {MAX_COUNT}, got {}",
                        shown(v)
                    ),
                );
                None
            }
        },
    };
    let run_schedule_minutes = count("RunScheduleInMinutes");
    let alert_period_minutes = count("AlertPeriodMinutes");
    let alert_minimum_event_count = count("AlertMinimumEventCount");
    let last_run = match present("LastRun") {
        None => None,
        Some(v) => match whole(v).and_then(|n| i64::try_from(n).ok()) {
            Some(t) => Some(t),
            None => {
                bad(
                    "LastRun",
                    format!("expected a time in seconds, got {}", shown(v)),
                );
                None
            }
        },
    };
    let last_keys = match present("LastAggResult") {
        None => BTreeMap::new(),
        Some(Value::Object(keys)) => {
            let mut out = BTreeMap::new();
            for (key, v) in keys {
                match whole(v).and_then(|n| i64::try_from(n).ok()) {
                    Some(t) => {
                        out.insert(key.clone(), t);
                    }
                    None => notes.push(format!(
                        "LastAggResult key `{}` skipped: its value {} is not a time in seconds",
                        cut(key, 60),
                        shown(v)
                    )),
                }
            }
            out
        }
        // An empty string is what a never-run rule holds in some tables.
        Some(Value::String(s)) if s.trim().is_empty() => BTreeMap::new(),
        Some(other) => {
            bad(
                "LastAggResult",
                format!("expected a map of key to time, got {}", kind(other)),
            );
            BTreeMap::new()
        }
    };
    for key in map.keys() {
        if !super::input::is_attribute(key) {
            notes.push(format!(
                "item attribute `{}` ignored: it is not part of the rule",
                cut(key, 60)
            ));
        }
    }
    match (rule_id, query) {
        (Some(rule_id), Some(query)) if problems.is_empty() => Ok(Item {
            rule_id,
            rule_type,
            run_schedule_minutes,
            alert_period_minutes,
            alert_minimum_event_count,
            alert_text,
            description,
            es_index,
            query,
            state: (last_run.is_some() || !last_keys.is_empty()).then_some(RuleState {
                last_run,
                last_keys,
            }),
            notes,
        }),
        (rule_id, _) => Err((rule_id, problems)),
    }
}

/// Largest count or number of minutes accepted (about 1.9 million years of minutes): beyond it a
/// value is a mistake, and it could not be written as a TOML integer or a duration.
const MAX_COUNT: u64 = 1_000_000_000_000;

/// A non-negative whole number, as a number or a numeric string.
fn whole(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..1e15).contains(f))
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", cut(s, 40)),
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    }
}
