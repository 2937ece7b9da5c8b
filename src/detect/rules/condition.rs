//! The condition a rule puts on single records: field tests combined by `all`, `any`, `none`.
//!
//! Parsed from the rule's `when` table with every problem collected (each named by where it
//! sits, `when.all[1].equals`), then evaluated against records as `serde_json::Value`.
//!
//! Semantics, in one place:
//! - a test on a path that reaches nothing is false (so `none` of it holds), except
//!   `exists = false`, which is exactly "reaches nothing";
//! - a path that crosses arrays holds when the test holds for any element it reaches;
//! - `equals`/`one_of` compare like with like: a string with strings, a number with numbers (an
//!   integer equals the same float), a bool with bools; CloudTrail's string `"10"` equals
//!   nothing but the string `"10"`. Only `gt`/`gte`/`lt`/`lte` read numbers out of strings;
//! - `wildcard`, `prefix` and `regex` look at strings only;
//! - `regex` must match the whole value (as Elasticsearch's `regexp` does): `xlarge` matches
//!   only `xlarge`; write `.*xlarge` for "ends with". `^` and `$` are accepted and redundant;
//! - `ignore_case` folds case for `equals`, `one_of`, `wildcard`, `prefix` and `regex`.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::Value;

use super::field::{scalars, FieldPath};
use super::regex::Regex;
use crate::config::Glob;

/// Deepest nesting of groups in `when`.
pub const MAX_DEPTH: usize = 16;

/// A problem in a condition: where it is (`when.all[0].equals`) and what is wrong.
pub type ConditionIssue = (String, String);

/// A field test or a group of conditions.
#[derive(Clone, Debug)]
pub enum Condition {
    Test(FieldTest),
    Group(Group),
}

/// `all` hold, at least one of `any` holds (when `any` is given), and none of `none` holds.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub all: Vec<Condition>,
    pub any: Vec<Condition>,
    pub none: Vec<Condition>,
}

#[derive(Clone, Debug)]
pub struct FieldTest {
    pub path: FieldPath,
    pub op: Op,
    pub ignore_case: bool,
}

/// A constant to compare with. Strings are stored case-folded when the test ignores case.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Debug)]
pub enum Op {
    Equals(Scalar),
    OneOf(Vec<Scalar>),
    Wildcard(Glob),
    Prefix(String),
    Regex(Regex),
    Exists(bool),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    LengthEq(u64),
    LengthGte(u64),
    LengthLte(u64),
}

const OPS: &[&str] = &[
    "equals",
    "one_of",
    "wildcard",
    "prefix",
    "regex",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "length_eq",
    "length_gte",
    "length_lte",
];
const TEXT_OPS: &[&str] = &["equals", "one_of", "wildcard", "prefix", "regex"];

fn fold(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_uppercase) {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// A number in a record: a JSON number, or a string that reads as a finite number.
fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

impl Scalar {
    fn matches(&self, v: &Value, ignore_case: bool) -> bool {
        match (self, v) {
            (Scalar::Str(a), Value::String(b)) => {
                if ignore_case {
                    fold(b) == a.as_str()
                } else {
                    a == b
                }
            }
            (Scalar::Int(i), Value::Number(n)) => {
                n.as_i64() == Some(*i) || (n.is_f64() && n.as_f64() == Some(*i as f64))
            }
            (Scalar::Float(f), Value::Number(n)) => n.as_f64() == Some(*f),
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Condition {
    /// Whether the record satisfies the condition. Never panics on odd records.
    pub fn holds(&self, record: &Value) -> bool {
        match self {
            Condition::Test(t) => t.holds(record),
            Condition::Group(g) => {
                g.all.iter().all(|c| c.holds(record))
                    && (g.any.is_empty() || g.any.iter().any(|c| c.holds(record)))
                    && !g.none.iter().any(|c| c.holds(record))
            }
        }
    }

    /// The string values the top-level field `key` must have for the condition to hold, when
    /// the condition pins it with case-sensitive `equals`/`one_of` (directly, through `all`, or
    /// in every branch of `any`). The engine indexes rules by these to skip records cheaply.
    pub fn required_values(&self, key: &str) -> Option<BTreeSet<String>> {
        match self {
            Condition::Test(t) => t.constant_values(key),
            Condition::Group(g) => {
                let mut found: Option<BTreeSet<String>> = None;
                let mut narrow = |set: BTreeSet<String>| {
                    found = Some(match found.take() {
                        None => set,
                        Some(have) => have.intersection(&set).cloned().collect(),
                    });
                };
                for c in &g.all {
                    if let Some(set) = c.required_values(key) {
                        narrow(set);
                    }
                }
                if !g.any.is_empty() {
                    let branches: Option<Vec<_>> =
                        g.any.iter().map(|c| c.required_values(key)).collect();
                    if let Some(branches) = branches {
                        narrow(branches.into_iter().flatten().collect());
                    }
                }
                found
            }
        }
    }
}

impl FieldTest {
    fn constant_values(&self, key: &str) -> Option<BTreeSet<String>> {
        if self.ignore_case || self.path.single_key() != Some(key) {
            return None;
        }
        let text = |s: &Scalar| match s {
            Scalar::Str(t) => Some(t.clone()),
            _ => None,
        };
        match &self.op {
            Op::Equals(s) => text(s).map(|t| BTreeSet::from([t])),
            Op::OneOf(list) => list.iter().map(text).collect(),
            _ => None,
        }
    }

    pub fn holds(&self, record: &Value) -> bool {
        let icase = self.ignore_case;
        // Patterns also read an object as its compact JSON text (keys sorted): indexes of the
        // Elasticsearch era held `responseElements` and the like as text, and their rules
        // match `*Failure*` against it.
        let text_test = |test: &dyn Fn(&str) -> bool| {
            self.path.any(record, &mut |v| {
                scalars(v, &mut |x| match x {
                    Value::String(s) if icase => test(&fold(s)),
                    Value::String(s) => test(s),
                    Value::Object(_) => {
                        let text = serde_json::to_string(x).unwrap_or_default();
                        if icase {
                            test(&fold(&text))
                        } else {
                            test(&text)
                        }
                    }
                    _ => false,
                })
            })
        };
        let number_test = |test: &dyn Fn(f64) -> bool| {
            self.path.any(record, &mut |v| {
                scalars(v, &mut |x| number_of(x).is_some_and(test))
            })
        };
        let length_test = |test: &dyn Fn(u64) -> bool| {
            self.path.any(record, &mut |v| {
                v.as_array().is_some_and(|a| test(a.len() as u64))
            })
        };
        match &self.op {
            Op::Equals(s) => self
                .path
                .any(record, &mut |v| scalars(v, &mut |x| s.matches(x, icase))),
            Op::OneOf(list) => self.path.any(record, &mut |v| {
                scalars(v, &mut |x| list.iter().any(|s| s.matches(x, icase)))
            }),
            Op::Wildcard(glob) => text_test(&|t| glob.matches(t)),
            Op::Prefix(p) => text_test(&|t| t.starts_with(p.as_str())),
            Op::Regex(r) => text_test(&|t| r.is_full_match(t)),
            Op::Exists(want) => self.path.any(record, &mut |_| true) == *want,
            Op::Gt(n) => number_test(&|x| x > *n),
            Op::Gte(n) => number_test(&|x| x >= *n),
            Op::Lt(n) => number_test(&|x| x < *n),
            Op::Lte(n) => number_test(&|x| x <= *n),
            Op::LengthEq(n) => length_test(&|x| x == *n),
            Op::LengthGte(n) => length_test(&|x| x >= *n),
            Op::LengthLte(n) => length_test(&|x| x <= *n),
        }
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

/// Parses the condition at `at`; problems go to `issues` and the result is `None` when any
/// were found under it.
pub fn parse(
    value: &toml::Value,
    at: &str,
    depth: usize,
    issues: &mut Vec<ConditionIssue>,
) -> Option<Condition> {
    let before = issues.len();
    let mut issue = |field: String, message: String| issues.push((field, message));
    let Some(table) = value.as_table() else {
        issue(
            at.to_string(),
            format!(
                "a condition is a table (a field test `{{ field = \"eventName\", equals = \"...\" }}` or a group with `all`, `any`, `none`), got a {}",
                type_name(value)
            ),
        );
        return None;
    };
    if depth > MAX_DEPTH {
        issue(
            at.to_string(),
            format!("conditions nest deeper than {MAX_DEPTH} levels"),
        );
        return None;
    }
    let is_group = ["all", "any", "none"]
        .iter()
        .any(|k| table.contains_key(*k));
    let condition = if table.contains_key("field") {
        if is_group {
            issue(
                at.to_string(),
                "mixes a field test with `all`/`any`/`none`; put the test inside `all`".into(),
            );
            return None;
        }
        parse_test(table, at, issues).map(Condition::Test)
    } else if is_group {
        parse_group(table, at, depth, issues).map(Condition::Group)
    } else if table.is_empty() {
        issues.push((
            at.to_string(),
            "is empty, and an empty condition would match every record: give `all`, `any` or `none`, or a field test".into(),
        ));
        None
    } else {
        let keys: Vec<&str> = table.keys().map(String::as_str).collect();
        issues.push((
            at.to_string(),
            format!(
                "has {} but neither `field` (a field test) nor `all`/`any`/`none` (a group)",
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        None
    };
    if issues.len() > before {
        None
    } else {
        condition
    }
}

fn parse_group(
    table: &toml::Table,
    at: &str,
    depth: usize,
    issues: &mut Vec<ConditionIssue>,
) -> Option<Group> {
    let mut group = Group::default();
    for (key, value) in table {
        let here = format!("{at}.{key}");
        let slot = match key.as_str() {
            "all" => &mut group.all,
            "any" => &mut group.any,
            "none" => &mut group.none,
            other => {
                issues.push((
                    here,
                    format!("unknown key `{other}`; a group has `all`, `any` and `none`"),
                ));
                continue;
            }
        };
        let Some(items) = value.as_array() else {
            issues.push((
                here,
                format!("must be an array of conditions, got a {}", type_name(value)),
            ));
            continue;
        };
        if items.is_empty() {
            issues.push((here, "is empty; give it conditions or remove it".into()));
            continue;
        }
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = parse(item, &format!("{at}.{key}[{i}]"), depth + 1, issues) {
                slot.push(c);
            }
        }
    }
    Some(group)
}

fn scalar(v: &toml::Value, ignore_case: bool) -> Result<Scalar, String> {
    match v {
        toml::Value::String(s) if ignore_case => Ok(Scalar::Str(s.to_lowercase())),
        toml::Value::String(s) => Ok(Scalar::Str(s.clone())),
        toml::Value::Integer(i) => Ok(Scalar::Int(*i)),
        toml::Value::Float(f) => Ok(Scalar::Float(*f)),
        toml::Value::Boolean(b) => Ok(Scalar::Bool(*b)),
        other => Err(format!(
            "must be a string, number or bool, got a {}",
            type_name(other)
        )),
    }
}

fn parse_test(
    table: &toml::Table,
    at: &str,
    issues: &mut Vec<ConditionIssue>,
) -> Option<FieldTest> {
    let before = issues.len();
    let mut issue = |key: &str, message: String| issues.push((format!("{at}.{key}"), message));
    let path = match table.get("field") {
        Some(toml::Value::String(s)) if s == "principal" => {
            issue(
                "field",
                "`principal` is a grouping key, not a record field; test `userIdentity.arn` or `userIdentity.type` instead (write `\"principal\"` with quotes for a record field of that name)".into(),
            );
            None
        }
        Some(toml::Value::String(s)) => match FieldPath::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                issue("field", format!("`{s}` is not a field path: {e}"));
                None
            }
        },
        Some(other) => {
            issue(
                "field",
                format!("must be a field path string, got a {}", type_name(other)),
            );
            None
        }
        None => None,
    };
    let ignore_case = match table.get("ignore_case") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            issue(
                "ignore_case",
                format!("must be true or false, got a {}", type_name(other)),
            );
            false
        }
    };
    for key in table.keys() {
        if key != "field" && key != "ignore_case" && !OPS.contains(&key.as_str()) {
            issue(
                key,
                format!(
                    "unknown key `{key}`; a field test has `field`, `ignore_case` and one of {}",
                    OPS.join(", ")
                ),
            );
        }
    }
    let ops: Vec<&str> = OPS
        .iter()
        .copied()
        .filter(|k| table.contains_key(*k))
        .collect();
    let op =
        match ops.as_slice() {
            [] => {
                issue(
                    "field",
                    format!("the test has no operator; give one of {}", OPS.join(", ")),
                );
                None
            }
            [name] => {
                if ignore_case && !TEXT_OPS.contains(name) {
                    issue(
                        "ignore_case",
                        format!(
                            "has no effect on `{name}`; it applies to {}",
                            TEXT_OPS.join(", ")
                        ),
                    );
                }
                match parse_op(name, &table[*name], ignore_case) {
                    Ok(op) => Some(op),
                    Err(e) => {
                        issue(name, e);
                        None
                    }
                }
            }
            several => {
                issue(
                    several[1],
                    format!(
                    "a field test has exactly one operator, this one has {}; use `all` for several",
                    several.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
                );
                None
            }
        };
    if issues.len() > before {
        return None;
    }
    Some(FieldTest {
        path: path?,
        op: op?,
        ignore_case,
    })
}

fn parse_op(name: &str, v: &toml::Value, ignore_case: bool) -> Result<Op, String> {
    let text = |v: &toml::Value| match v {
        toml::Value::String(s) if s.is_empty() => Err("must not be empty".to_string()),
        toml::Value::String(s) if ignore_case => Ok(s.to_lowercase()),
        toml::Value::String(s) => Ok(s.clone()),
        other => Err(format!("must be a string, got a {}", type_name(other))),
    };
    let number = |v: &toml::Value| match v {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(f) if f.is_finite() => Ok(*f),
        other => Err(format!("must be a number, got {other}")),
    };
    let length = |v: &toml::Value| match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        other => Err(format!("must be a whole number of 0 or more, got {other}")),
    };
    Ok(match name {
        "equals" => match v {
            toml::Value::Array(_) => {
                return Err("is a list; use `one_of` to match any of several values".into())
            }
            other => Op::Equals(scalar(other, ignore_case)?),
        },
        "one_of" => {
            let Some(items) = v.as_array() else {
                return Err(format!("must be an array, got a {}", type_name(v)));
            };
            if items.is_empty() {
                return Err("is empty and would never match".into());
            }
            let list: Result<Vec<Scalar>, String> = items
                .iter()
                .enumerate()
                .map(|(i, item)| scalar(item, ignore_case).map_err(|e| format!("item {i} {e}")))
                .collect();
            Op::OneOf(list?)
        }
        "wildcard" => Op::Wildcard(Glob::new(&text(v)?)),
        "prefix" => Op::Prefix(text(v)?),
        "regex" => {
            let pattern = match v {
                toml::Value::String(s) => s,
                other => return Err(format!("must be a string, got a {}", type_name(other))),
            };
            Op::Regex(
                Regex::with_case(pattern, ignore_case)
                    .map_err(|e| format!("`{pattern}` is not a supported pattern: {e}"))?,
            )
        }
        "exists" => match v {
            toml::Value::Boolean(b) => Op::Exists(*b),
            other => return Err(format!("must be true or false, got {other}")),
        },
        "gt" => Op::Gt(number(v)?),
        "gte" => Op::Gte(number(v)?),
        "lt" => Op::Lt(number(v)?),
        "lte" => Op::Lte(number(v)?),
        "length_eq" => Op::LengthEq(length(v)?),
        "length_gte" => Op::LengthGte(length(v)?),
        "length_lte" => Op::LengthLte(length(v)?),
        other => return Err(format!("unknown operator `{other}`")),
    })
}
