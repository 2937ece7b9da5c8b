//! The single-field queries: `term`, `terms`, `wildcard`, `prefix`, `match`, `match_phrase`,
//! `range` and `exists`, and the field names they test (`.keyword` stripped).
//!
//! Elasticsearch compares a `.keyword` field's exact text and an analysed field's lower-cased
//! words; trailhound compares whole values. Where that changes what matches, a note says so.

use super::dsl::{Ctx, Leaf};
use super::emit::{Cond, Group, Op, Value};
use super::query::Json;
use super::Out;

/// A field name as Elasticsearch knows it, turned into a trailhound path.
pub(super) struct FieldName {
    pub path: String,
    /// The name ended in `.keyword`: the exact, unanalysed value.
    pub keyword: bool,
    pub is_time: bool,
}

/// Strips `.keyword` and checks the rest is a dotted path; segments other than plain words are
/// quoted (`a."b c"`).
pub(super) fn field_path(name: &str) -> Result<FieldName, String> {
    let (base, keyword) = match name.strip_suffix(".keyword") {
        Some(base) => (base, true),
        None => (name, false),
    };
    if base.is_empty() || base.split('.').any(str::is_empty) {
        return Err(format!("`{name}` is not a field path"));
    }
    let mut segments = Vec::new();
    for seg in base.split('.') {
        if seg.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
            return Err(format!(
                "the field name `{name}` holds a quote, backslash or control character"
            ));
        }
        if seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            segments.push(seg.to_string());
        } else {
            segments.push(format!("\"{seg}\""));
        }
    }
    Ok(FieldName {
        path: segments.join("."),
        keyword,
        is_time: base == "eventTime" || base == "@timestamp",
    })
}

/// `{ "<field>": <param> }` with `boost` and `_name` beside the field set aside.
fn one_field<'a>(
    body: &'a Json,
    pos: &str,
    out: &mut Out,
) -> Option<(FieldName, &'a Json, String)> {
    let Some(entries) = body.as_object() else {
        out.problem(
            pos,
            format!("expected an object naming a field, got {}", body.kind()),
        );
        return None;
    };
    let fields: Vec<&(String, Json)> = entries
        .iter()
        .filter(|(k, _)| k != "boost" && k != "_name")
        .collect();
    if fields.len() < entries.len() {
        out.note(format!(
            "`{pos}`: boost/_name ignored: they affect scoring or labels only"
        ));
    }
    let (name, param) = match fields.as_slice() {
        [one] => (&one.0, &one.1),
        [] => {
            out.problem(pos, "no field named");
            return None;
        }
        several => {
            let names: Vec<String> = several.iter().map(|(k, _)| format!("`{k}`")).collect();
            out.problem(
                pos,
                format!(
                    "one {} query names one field, found {}",
                    pos.rsplit('.').next().unwrap_or(""),
                    names.join(", ")
                ),
            );
            return None;
        }
    };
    let at = format!("{pos}.{name}");
    match field_path(name) {
        Ok(field) => Some((field, param, at)),
        Err(why) => {
            out.problem(&at, why);
            None
        }
    }
}

/// A field's parameter, read from its long form `{ "value": .., "case_insensitive": .., ... }`
/// or its short form (the value itself).
struct Param<'a> {
    value: &'a Json,
    ignore_case: bool,
    /// The other options the query type knows, for the caller to weigh.
    options: Vec<(&'a str, &'a Json)>,
}

fn value_param<'a>(
    param: &'a Json,
    value_keys: &[&str],
    known: &[&str],
    at: &str,
    out: &mut Out,
) -> Option<Param<'a>> {
    let Some(entries) = param.as_object() else {
        return Some(Param {
            value: param,
            ignore_case: false,
            options: Vec::new(),
        });
    };
    if !out.no_duplicates(entries, at) {
        return None;
    }
    let mut value = None;
    let mut ignore_case = false;
    let mut rest = Vec::new();
    for (key, v) in entries {
        let k = key.as_str();
        if value_keys.contains(&k) {
            value = Some(v);
        } else if k == "case_insensitive" {
            match v {
                Json::Bool(b) => ignore_case = *b,
                other => {
                    out.problem(
                        format!("{at}.{k}"),
                        format!("expected true or false, got {}", other.kind()),
                    );
                    return None;
                }
            }
        } else if k == "boost" || k == "_name" || k == "rewrite" {
            out.note(format!(
                "`{at}.{k}` ignored: it affects scoring or labels only"
            ));
        } else if known.contains(&k) {
            rest.push((k, v));
        } else {
            out.problem(format!("{at}.{k}"), format!("unsupported option `{k}`"));
            return None;
        }
    }
    match value {
        Some(value) => Some(Param {
            value,
            ignore_case,
            options: rest,
        }),
        None => {
            out.problem(at, format!("expected `{}`", value_keys.join("` or `")));
            None
        }
    }
}

/// A string, number or boolean as a condition value.
pub(super) fn scalar(v: &Json) -> Result<Value, String> {
    match v {
        Json::String(s) => Ok(Value::Str(s.clone())),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Value::Int(i)),
            (None, _) if n.is_u64() => Err(format!("{n} is too large for a TOML integer")),
            (None, Some(f)) => Ok(Value::Float(f)),
            (None, None) => Err(format!("{n} is not a representable number")),
        },
        other => Err(format!(
            "expected a string, number or boolean, got {}",
            other.kind()
        )),
    }
}

fn scalar_at(v: &Json, at: &str, out: &mut Out) -> Option<Value> {
    scalar(v).map_err(|why| out.problem(at, why)).ok()
}

/// A value as the record holds it: a `.keyword` field is text, so Elasticsearch compared a
/// number or boolean there as text, and so must trailhound (which never equates `5` and `"5"`).
fn typed(value: Value, field: &FieldName, at: &str, out: &mut Out) -> Value {
    let text = match &value {
        Value::Str(_) => return value,
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
    };
    if field.keyword {
        out.note(format!("`{at}`: the value {text} is compared as the text \"{text}\", as Elasticsearch did on a keyword field"));
        Value::Str(text)
    } else {
        out.note(format!("`{at}`: the value {text} is compared as a {}; trailhound does not equate it with the text \"{text}\" (Elasticsearch converted between the two)", if matches!(value, Value::Bool(_)) { "boolean" } else { "number" }));
        value
    }
}

/// CloudTrail fields that hold objects (or arrays of objects), never text.
const OBJECT_FIELDS: &[&str] = &[
    "userIdentity",
    "userIdentity.sessionContext",
    "userIdentity.sessionContext.sessionIssuer",
    "userIdentity.sessionContext.attributes",
    "userIdentity.sessionContext.webIdFederationData",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
    "resources",
    "tlsDetails",
    "edgeDeviceDetails",
    "insightDetails",
];

/// An equality test on a field CloudTrail fills with an object never holds in trailhound
/// (patterns read an object as its JSON text, equality does not: the exact text the index held
/// cannot be reproduced). The rule did something there and would silently do nothing here: it
/// is imported disabled, with the reason.
fn text_on_object(field: &FieldName, value: &Value, at: &str, out: &mut Out) {
    if matches!(value, Value::Str(_)) && OBJECT_FIELDS.contains(&field.path.as_str()) {
        out.disable.push(format!(
            "`{at}`: `{p}` is an object in CloudTrail records (the Elasticsearch index held it as text, hence `.keyword`), and an equality test on an object never holds in trailhound: the rule is imported disabled; rewrite the test against the member meant (`{p}.<member>`) and enable it",
            p = field.path
        ));
    }
}

fn field_cond(field: &FieldName, op: Op, ignore_case: bool) -> Cond {
    Cond::Field {
        path: field.path.clone(),
        op,
        ignore_case,
    }
}

pub(super) fn term(body: &Json, pos: &str, out: &mut Out) -> Option<Cond> {
    let (field, param, at) = one_field(body, pos, out)?;
    let Param {
        value, ignore_case, ..
    } = value_param(param, &["value"], &[], &at, out)?;
    let value = typed(scalar_at(value, &at, out)?, &field, &at, out);
    if !field.keyword && matches!(value, Value::Str(_)) {
        out.note(format!("`{at}`: compared with the whole value; if the index analysed `{}` (no `.keyword`), Elasticsearch compared the term with its lower-cased words instead", field.path));
    }
    text_on_object(&field, &value, &at, out);
    Some(field_cond(&field, Op::Equals(value), ignore_case))
}

pub(super) fn terms(body: &Json, pos: &str, out: &mut Out) -> Option<Cond> {
    let (field, param, at) = one_field(body, pos, out)?;
    let items = match param {
        Json::Array(items) => items,
        Json::Object(_) => {
            out.problem(&at, "a terms lookup (values fetched from another document) cannot be converted: list the values");
            return None;
        }
        other => {
            out.problem(
                &at,
                format!("expected a list of values, got {}", other.kind()),
            );
            return None;
        }
    };
    let mut values = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let value = scalar_at(item, &format!("{at}[{i}]"), out)?;
        values.push(typed(value, &field, &at, out));
    }
    if let Some(v) = values.first() {
        text_on_object(&field, v, &at, out);
    }
    if !field.keyword && values.iter().any(|v| matches!(v, Value::Str(_))) {
        out.note(format!("`{at}`: compared with the whole value; if the index analysed `{}` (no `.keyword`), Elasticsearch compared the terms with its lower-cased words instead", field.path));
    }
    match values.len() {
        0 => {
            out.problem(&at, "an empty terms list matches no event");
            None
        }
        1 => Some(field_cond(&field, Op::Equals(values.remove(0)), false)),
        _ => Some(field_cond(&field, Op::OneOf(values), false)),
    }
}

/// `wildcard` and `prefix`.
pub(super) fn pattern(kind: &str, body: &Json, pos: &str, out: &mut Out) -> Option<Cond> {
    let (field, param, at) = one_field(body, pos, out)?;
    let keys: &[&str] = if kind == "wildcard" {
        &["value", "wildcard"]
    } else {
        &["value"]
    };
    let Param {
        value, ignore_case, ..
    } = value_param(param, keys, &[], &at, out)?;
    let Some(text) = value.as_str() else {
        out.problem(
            &at,
            format!("expected a string pattern, got {}", value.kind()),
        );
        return None;
    };
    if OBJECT_FIELDS.contains(&field.path.as_str()) {
        out.note(format!(
            "`{at}`: `{}` is an object in CloudTrail records (the Elasticsearch index held it as text); trailhound matches the pattern against the object's compact JSON text, keys sorted, which may be spaced or ordered differently from what the index held",
            field.path
        ));
    }
    let op = if kind == "prefix" && text.is_empty() {
        // Every string has the empty prefix: the field only has to be there.
        Op::Exists(true)
    } else if kind == "prefix" {
        Op::Prefix(text.to_string())
    } else {
        match wildcard(text) {
            Ok((op, escaped)) => {
                if escaped {
                    out.note(format!("`{at}`: the pattern escapes `*`, `?` or `\\`, which trailhound wildcards cannot: written as an anchored regex"));
                }
                op
            }
            Err(why) => {
                out.problem(&at, why);
                return None;
            }
        }
    };
    if !field.keyword {
        out.note(format!("`{at}`: applied to the whole value; if the index analysed `{}` (no `.keyword`), Elasticsearch applied it to each lower-cased word", field.path));
    }
    Some(field_cond(&field, op, ignore_case))
}

#[derive(Clone, Copy, PartialEq)]
enum Glob {
    Lit(char),
    Star,
    One,
}

/// An Elasticsearch wildcard pattern as the simplest equivalent operation: `equals` without
/// wildcards, `prefix` for `abc*`, a trailhound `wildcard` otherwise, or an anchored `regex`
/// when an escaped `*`, `?` or `\` must stay literal (trailhound globs have no escapes). The
/// flag says the regex form was needed.
fn wildcard(pattern: &str) -> Result<(Op, bool), String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    let mut escaped_meta = false;
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Glob::Star,
            '?' => Glob::One,
            '\\' => match chars.next() {
                Some(e) => {
                    escaped_meta |= matches!(e, '*' | '?' | '\\');
                    Glob::Lit(e)
                }
                None => return Err("the wildcard pattern ends with a lone `\\`".into()),
            },
            c => Glob::Lit(c),
        });
    }
    let literal = |ts: &[Glob]| -> String {
        ts.iter()
            .filter_map(|t| match t {
                Glob::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    };
    let metas = tokens.iter().filter(|t| !matches!(t, Glob::Lit(_))).count();
    if metas == 0 {
        return Ok((Op::Equals(Value::Str(literal(&tokens))), false));
    }
    if metas == 1 && tokens.last() == Some(&Glob::Star) {
        return Ok((Op::Prefix(literal(&tokens)), false));
    }
    if !escaped_meta {
        return Ok((Op::Wildcard(pattern.to_string()), false));
    }
    let mut re = String::from("^");
    for t in &tokens {
        match t {
            Glob::Star => re.push_str("(?:.|\\n)*"),
            Glob::One => re.push_str("(?:.|\\n)"),
            Glob::Lit(c) if c.is_ascii_punctuation() || *c == ' ' => {
                re.push('\\');
                re.push(*c);
            }
            Glob::Lit('\n') => re.push_str("\\n"),
            Glob::Lit(c) => re.push(*c),
        }
    }
    re.push('$');
    Ok((Op::Regex(re), true))
}

/// `match` and `match_phrase`.
pub(super) fn text_match(kind: &str, body: &Json, pos: &str, out: &mut Out) -> Option<Cond> {
    let (field, param, at) = one_field(body, pos, out)?;
    let known: &[&str] = if kind == "match" {
        &[
            "operator",
            "analyzer",
            "minimum_should_match",
            "zero_terms_query",
            "lenient",
            "auto_generate_synonyms_phrase_query",
            "fuzziness",
            "prefix_length",
            "max_expansions",
            "fuzzy_transpositions",
            "fuzzy_rewrite",
        ]
    } else {
        &["analyzer", "slop", "zero_terms_query"]
    };
    let Param { value, options, .. } = value_param(param, &["query"], known, &at, out)?;
    let value = typed(scalar_at(value, &at, out)?, &field, &at, out);
    text_on_object(&field, &value, &at, out);
    let mut and = false;
    for (k, v) in options {
        match k {
            "fuzziness" => {
                out.problem(
                    format!("{at}.fuzziness"),
                    "fuzzy matching has no trailhound equivalent",
                );
                return None;
            }
            "operator" => and = v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("and")),
            "slop" if matches!(v, Json::Number(n) if n.as_u64() == Some(0)) => {}
            other => out.note(format!(
                "`{at}.{other}` ignored: the condition compares whole values, not analysed words"
            )),
        }
    }
    let Value::Str(text) = &value else {
        return Some(field_cond(&field, Op::Equals(value), false));
    };
    if field.keyword {
        // A keyword field is not analysed: match is exact equality there.
        return Some(field_cond(&field, Op::Equals(value.clone()), false));
    }
    out.note(format!("`{at}`: Elasticsearch analysed `{}` (split into lower-cased words); approximated by a case-insensitive comparison with the whole value", field.path));
    if text.split_whitespace().nth(1).is_some() {
        let what = if kind == "match_phrase" {
            "the words in this order anywhere in the value"
        } else if and {
            "all of the words, in any order"
        } else {
            "any one of the words (operator OR)"
        };
        out.note(format!("`{at}`: Elasticsearch matched events holding {what}; here the whole value must equal `{text}`"));
    }
    Some(field_cond(&field, Op::Equals(value.clone()), true))
}

pub(super) fn range(body: &Json, pos: &str, ctx: Ctx, out: &mut Out) -> Option<Leaf> {
    let (field, param, at) = one_field(body, pos, out)?;
    let Some(entries) = param.as_object() else {
        out.problem(
            &at,
            format!("expected an object of bounds, got {}", param.kind()),
        );
        return None;
    };
    if !out.no_duplicates(entries, &at) {
        return None;
    }
    let (mut include_lower, mut include_upper) = (true, true);
    let mut bounds: Vec<(&str, &Json)> = Vec::new();
    for (key, v) in entries {
        match key.as_str() {
            k @ ("gt" | "gte" | "lt" | "lte" | "from" | "to") => bounds.push((k, v)),
            "include_lower" => include_lower = !matches!(v, Json::Bool(false)),
            "include_upper" => include_upper = !matches!(v, Json::Bool(false)),
            "format" | "time_zone" | "relation" | "boost" | "_name" => {}
            other => {
                out.problem(
                    format!("{at}.{other}"),
                    format!("unsupported range option `{other}`"),
                );
                return None;
            }
        }
    }
    if field.is_time {
        let shown: Vec<String> = bounds
            .iter()
            .map(|(k, v)| format!("{k} {}", show(v)))
            .collect();
        if !ctx.conjunctive {
            out.problem(&at, "a time range under must_not or should depends on when the rule ran; it has no meaning per hunt window");
            return None;
        }
        out.note(format!("`{at}` ({}) was the Elasticsearch run window: dropped, trailhound evaluates the rule over each hunt window", shown.join(", ")));
        return Some(Leaf::Dropped);
    }
    let mut conds = Vec::new();
    for (k, v) in bounds {
        if matches!(v, Json::Null) {
            continue; // an open end in the from/to form
        }
        let op = |n| match k {
            "gt" => Op::Gt(n),
            "gte" => Op::Gte(n),
            "lt" => Op::Lt(n),
            "lte" => Op::Lte(n),
            "from" if include_lower => Op::Gte(n),
            "from" => Op::Gt(n),
            _ if include_upper => Op::Lte(n),
            _ => Op::Lt(n),
        };
        let number = match v {
            Json::Number(_) => scalar(v).ok(),
            Json::String(s) => {
                let parsed = s.trim().parse::<i64>().map(Value::Int).ok().or_else(|| {
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(Value::Float)
                });
                if parsed.is_some() {
                    out.note(format!(
                        "`{at}.{k}`: the number was written as a string; converted to a number"
                    ));
                }
                parsed
            }
            _ => None,
        };
        match number {
            Some(n) => conds.push(field_cond(&field, op(n), false)),
            None => {
                out.problem(format!("{at}.{k}"), format!("{} is not a number: ranges on dates or text (other than the event time) cannot be converted", show(v)));
                return None;
            }
        }
    }
    Some(Leaf::Cond(match conds.len() {
        // A range without bounds matches every event that has the field.
        0 => field_cond(&field, Op::Exists(true), false),
        1 => conds.remove(0),
        _ => Cond::Group(Group {
            all: conds,
            ..Group::default()
        }),
    }))
}

pub(super) fn exists(body: &Json, pos: &str, out: &mut Out) -> Option<Cond> {
    let Some(entries) = body.as_object() else {
        out.problem(
            pos,
            format!("expected {{\"field\": ...}}, got {}", body.kind()),
        );
        return None;
    };
    let mut name = None;
    for (key, v) in entries {
        match (key.as_str(), v) {
            ("field", Json::String(s)) => name = Some(s),
            ("boost" | "_name", _) => {}
            (k, _) => {
                out.problem(
                    format!("{pos}.{k}"),
                    format!("unexpected `{k}`: exists takes one `field` name"),
                );
                return None;
            }
        }
    }
    let Some(name) = name else {
        out.problem(pos, "exists without a `field` name");
        return None;
    };
    match field_path(name) {
        Ok(field) => Some(field_cond(&field, Op::Exists(true), false)),
        Err(why) => {
            out.problem(format!("{pos}.field"), why);
            None
        }
    }
}

/// A value for a message, cut short.
fn show(v: &Json) -> String {
    let s = match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        other => other.kind().to_string(),
    };
    super::input::cut(&s, 60)
}
