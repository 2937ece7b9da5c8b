//! The `Query` attribute: its JSON text, and the search around the query proper (the terms
//! aggregation that names the key the rule alerts on, and response settings).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::dsl;
use super::emit::{Cond, Group, Op};
use super::input::{excerpt, json_message, offset_of};
use super::leaf::{self, field_path};
use super::{Out, Problem};

/// JSON that keeps every key of an object in order, duplicates included: Elasticsearch rejects
/// a duplicated key, and a map would silently keep only one of them.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// "a string", "an array": for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    pub(super) fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// Parses the Query text. serde_json refuses nesting deeper than 128 levels before our code
/// recurses at all, so a hostile query cannot overflow the stack here.
pub(super) fn parse(text: &str) -> Result<Json, Problem> {
    serde_json::from_str::<Json>(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let at = if e.classify() == serde_json::error::Category::Eof {
            text.len()
        } else {
            offset_of(text, line, column)
        };
        Problem {
            position: format!("Query line {line} column {column}"),
            reason: format!(
                "Query is not valid JSON: line {line} column {column}: {} near `{}`",
                json_message(&e),
                excerpt(text, at)
            ),
        }
    })
}

/// The search a rule ran: which events (`when`) and, with a terms aggregation, the key.
#[derive(Debug)]
pub(super) struct Search {
    pub when: Group,
    pub terms: Option<Terms>,
}

#[derive(Debug)]
pub(super) struct Terms {
    /// The aggregated field as a trailhound path (`.keyword` removed).
    pub path: String,
    /// The aggregation's own `min_doc_count`, when set.
    pub min_doc_count: Option<u64>,
}

/// Settings that shape the response but not which events match or which keys are found.
const RESPONSE_ONLY: &[&str] = &[
    "from",
    "sort",
    "_source",
    "track_total_hits",
    "timeout",
    "stored_fields",
    "docvalue_fields",
    "explain",
    "version",
    "highlight",
    "track_scores",
    "seq_no_primary_term",
];

pub(super) fn convert(root: &Json, out: &mut Out) -> Option<Search> {
    let Some(entries) = root.as_object() else {
        out.problem(
            "Query",
            format!(
                "expected a search object {{\"query\": ...}}, got {}",
                root.kind()
            ),
        );
        return None;
    };
    let mut query = None;
    let mut aggs = None;
    let mut ignored = Vec::new();
    let mut ok = out.no_duplicates(entries, "");
    for (key, value) in entries {
        match key.as_str() {
            "query" => query = Some(value),
            "aggs" | "aggregations" => {
                if aggs.is_some() {
                    out.problem(key, "both `aggs` and `aggregations`: write one of them");
                    ok = false;
                }
                aggs = Some((key.as_str(), value));
            }
            // `"size": 0` asks for counts only; it never changes what matches.
            "size" => {}
            k if RESPONSE_ONLY.contains(&k) => ignored.push(format!("`{k}`")),
            other => {
                out.problem(
                    other,
                    format!("the search option `{other}` is not supported: it changes which events or keys the search returns"),
                );
                ok = false;
            }
        }
    }
    if !ignored.is_empty() {
        out.note(format!(
            "ignored {}: they shape the Elasticsearch response, not which events match",
            ignored.join(", ")
        ));
    }
    let mut when = match query {
        Some(q) => dsl::convert_root(q, "query", out),
        None => {
            out.note("the search has no `query`: every event matches, as in Elasticsearch");
            Some(Group::default())
        }
    };
    let terms = match aggs {
        Some((key, value)) => match aggregation(value, key, out) {
            Ok(Some((terms, include, exclude))) => {
                if let Some(w) = when.as_mut() {
                    w.all.extend(include);
                    w.none.extend(exclude);
                }
                Some(terms)
            }
            Ok(None) => None,
            Err(()) => {
                ok = false;
                None
            }
        },
        None => None,
    };
    match (when, ok) {
        (Some(when), true) => Some(Search { when, terms }),
        _ => None,
    }
}

type Agg = (Terms, Option<Cond>, Option<Cond>);

/// The one terms aggregation: its field, and `include`/`exclude` lists as conditions.
fn aggregation(value: &Json, pos: &str, out: &mut Out) -> Result<Option<Agg>, ()> {
    let Some(aggs) = value.as_object() else {
        out.problem(
            pos,
            format!(
                "expected an object of named aggregations, got {}",
                value.kind()
            ),
        );
        return Err(());
    };
    let (name, body) = match aggs {
        [] => {
            out.note(format!(
                "`{pos}` is empty: the rule counts all matching events (kind `match`)"
            ));
            return Ok(None);
        }
        [one] => (&one.0, &one.1),
        several => {
            let names: Vec<String> = several.iter().map(|(n, _)| format!("`{n}`")).collect();
            out.problem(
                pos,
                format!("{} aggregations ({}): the rule alerts on the keys of exactly one terms aggregation", names.len(), names.join(", ")),
            );
            return Err(());
        }
    };
    let pos = format!("{pos}.{name}");
    let Some(body) = body.as_object() else {
        out.problem(
            &pos,
            format!("expected an aggregation object, got {}", body.kind()),
        );
        return Err(());
    };
    let mut terms = None;
    for (key, value) in body {
        match key.as_str() {
            "terms" => terms = Some(value),
            "aggs" | "aggregations" => out.note(format!(
                "`{pos}.{key}`: sub-aggregations only add figures to each key; ignored"
            )),
            "meta" => {}
            other => {
                out.problem(
                    format!("{pos}.{other}"),
                    format!("a `{other}` aggregation cannot name the alert key: only `terms` can"),
                );
                return Err(());
            }
        }
    }
    let Some(terms) = terms else {
        out.problem(
            &pos,
            "the aggregation has no `terms`: nothing names the alert key",
        );
        return Err(());
    };
    terms_aggregation(terms, &format!("{pos}.terms"), out).map(Some)
}

fn terms_aggregation(value: &Json, pos: &str, out: &mut Out) -> Result<Agg, ()> {
    let Some(entries) = value.as_object() else {
        out.problem(pos, format!("expected an object, got {}", value.kind()));
        return Err(());
    };
    let mut ok = out.no_duplicates(entries, pos);
    let mut field = None;
    let mut size = None;
    let mut min_doc_count = None;
    let (mut include, mut exclude) = (None, None);
    let mut ignored = Vec::new();
    for (key, v) in entries {
        let at = format!("{pos}.{key}");
        match key.as_str() {
            "field" => match v.as_str() {
                Some(f) => field = Some(f),
                None => {
                    out.problem(&at, format!("expected a field name, got {}", v.kind()));
                    ok = false;
                }
            },
            "size" => size = Some(v),
            "min_doc_count" => match whole(v) {
                Some(n) => min_doc_count = Some(n),
                None => {
                    out.problem(&at, format!("expected a whole number, got {}", v.kind()));
                    ok = false;
                }
            },
            "include" | "exclude" => {
                let slot = if key == "include" {
                    &mut include
                } else {
                    &mut exclude
                };
                *slot = Some((v, at));
            }
            "order"
            | "shard_size"
            | "show_term_doc_count_error"
            | "execution_hint"
            | "collect_mode"
            | "shard_min_doc_count"
            | "format"
            | "value_type" => ignored.push(format!("`{key}`")),
            "missing" => {
                out.problem(&at, "`missing` counted events without the field under a stand-in key; trailhound only keys on values present in the event");
                ok = false;
            }
            "script" => {
                out.problem(
                    &at,
                    "a script computed the key inside Elasticsearch; it cannot be converted",
                );
                ok = false;
            }
            other => {
                out.problem(&at, format!("unsupported terms option `{other}`"));
                ok = false;
            }
        }
    }
    let Some(name) = field else {
        if ok {
            out.problem(pos, "the terms aggregation has no `field`");
        }
        return Err(());
    };
    let path = match field_path(name) {
        Ok(f) => f.path,
        Err(reason) => {
            out.problem(format!("{pos}.field"), reason);
            return Err(());
        }
    };
    let mut lists = [None, None];
    for (slot, list) in lists.iter_mut().zip([include, exclude]) {
        if let Some((v, at)) = list {
            match value_list(v) {
                Some(values) => *slot = Some(Cond::field(&path, Op::OneOf(values))),
                None => {
                    out.problem(&at, "only a list of values can be converted (a string is a Lucene regular expression, an object a partition)");
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return Err(());
    }
    if !ignored.is_empty() {
        out.note(format!(
            "`{pos}`: {} ignored: ordering and tuning the buckets does not change which keys exist",
            ignored.join(", ")
        ));
    }
    match size.and_then(whole) {
        Some(n) => out.note(format!("`{pos}.size` {n}: Elasticsearch reported at most the {n} most frequent keys per run; trailhound checks every key")),
        None => out.note(format!("`{pos}` had no `size`: Elasticsearch reported at most the 10 most frequent keys per run; trailhound checks every key")),
    }
    let [include, exclude] = lists;
    Ok((
        Terms {
            path,
            min_doc_count,
        },
        include,
        exclude,
    ))
}

fn value_list(v: &Json) -> Option<Vec<super::emit::Value>> {
    match v {
        Json::Array(items) if !items.is_empty() => {
            items.iter().map(|i| leaf::scalar(i).ok()).collect()
        }
        _ => None,
    }
}

/// A non-negative whole number up to 10^12, given as a number or a numeric string.
pub(super) fn whole(v: &Json) -> Option<u64> {
    let n = match v {
        Json::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
                .map(|f| f as u64)
        }),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|&n| n <= 1_000_000_000_000)
}
