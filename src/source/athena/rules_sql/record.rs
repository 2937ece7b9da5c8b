//! The record each matching event is rebuilt as: every field the enabled rules read.

use std::collections::BTreeSet;

use super::condition::*;
use super::literal::*;
use super::table::*;
use super::RuleSqlError;
use crate::detect::rules::{Condition, FieldPath, Key, Rule, RuleKind, RuleSet};

/// Every path a rule reads: its `when` paths, group keys, terms and counted field.
pub(super) fn paths_of(rule: &Rule) -> Vec<(&'static str, &FieldPath)> {
    fn walk<'r>(c: &'r Condition, out: &mut Vec<(&'static str, &'r FieldPath)>) {
        match c {
            Condition::Test(t) => out.push(("when", &t.path)),
            Condition::Group(g) => g
                .all
                .iter()
                .chain(&g.any)
                .chain(&g.none)
                .for_each(|c| walk(c, out)),
        }
    }
    let mut out = Vec::new();
    walk(&rule.when, &mut out);
    let mut keys: Vec<(&'static str, &Key)> =
        rule.group_by.iter().map(|k| ("group_by", k)).collect();
    match &rule.kind {
        RuleKind::Cardinality { field, .. } => keys.push(("field", field)),
        RuleKind::NewTerms { terms, .. } => keys.extend(terms.iter().map(|k| ("terms", k))),
        RuleKind::Match { .. } | RuleKind::Threshold { .. } => {}
    }
    for (what, key) in keys {
        if let Key::Path(p) = key {
            out.push((what, p));
        }
    }
    out
}

/// The JSON of one field for `json_object`. Trino's `json_object` embeds the value of a
/// JSON-returning function as JSON and quotes any other text, and its own result is text; so
/// every nested object or array is handed over as `json_query(<JSON text>, 'lax $')`, which
/// also turns JSON text that does not parse into NULL instead of failing the query. (Trino's
/// SQL/JSON paths need the mode; sqlglot hands it to DuckDB unchanged, which reads it as no
/// path, so tests/athena_rules_sql.rs writes `'$'` there before running the text on DuckDB.)
pub(super) fn rebuild(
    expr: &str,
    shape: Shape,
    lambda_depth: usize,
) -> Result<Option<String>, String> {
    Ok(Some(match shape {
        Text => expr.to_string(),
        Bool => format!("TRY_CAST({expr} AS BOOLEAN)"),
        Json => format!("json_query({expr}, 'lax $')"),
        Map => return Ok(None),
        Struct(fields) => format!(
            "json_query(CASE WHEN {expr} IS NULL THEN NULL ELSE {} END, 'lax $')",
            object(expr, fields, lambda_depth)?
        ),
        Structs(fields) => {
            let el = format!("el{lambda_depth}");
            format!(
                "json_query(CASE WHEN {expr} IS NULL THEN NULL WHEN cardinality({expr}) = 0 \
                 THEN '[]' ELSE '[' || array_join(transform({expr}, {el} -> {}), ',') || ']' \
                 END, 'lax $')",
                object(&el, fields, lambda_depth + 1)?
            )
        }
    }))
}

pub(super) fn object(expr: &str, fields: &[Field], lambda_depth: usize) -> Result<String, String> {
    let mut members = Vec::new();
    for field in fields {
        let sub = format!("{expr}.{}", field.column);
        if let Some(value) = rebuild(&sub, field.shape, lambda_depth)? {
            members.push(format!("{}: {value}", literal(field.key)?));
        }
    }
    Ok(format!("json_object({})", members.join(", ")))
}

/// The JSON object each returned row carries: the fields of [`ALWAYS`] and every top-level
/// field a rule reads, whole (a rule reading `requestParameters.x` gets all of
/// `requestParameters`), in the table's column order.
pub fn compile_record(rules: &RuleSet) -> Result<String, RuleSqlError> {
    let mut wanted: BTreeSet<&str> = ALWAYS.iter().copied().collect();
    for rule in rules.enabled() {
        for (what, path) in paths_of(rule) {
            let checked = match resolve(path.keys()) {
                Ok(Target::Json(_, keys)) => keys.iter().try_for_each(|k| check_key(k)),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(why) = checked {
                return Err(if what == "when" {
                    RuleSqlError::Test {
                        rule: rule.id.clone(),
                        origin: rule.origin.clone(),
                        field: path.as_str().to_string(),
                        why,
                    }
                } else {
                    RuleSqlError::Key {
                        rule: rule.id.clone(),
                        origin: rule.origin.clone(),
                        key: format!("{what} {}", path.as_str()),
                        why,
                    }
                });
            }
            if let Some(first) = path.keys().first() {
                if let Some(c) = column(first) {
                    wanted.insert(c.key);
                }
            }
        }
    }
    let mut members = Vec::new();
    for field in COLUMNS.iter().filter(|c| wanted.contains(c.key)) {
        let value = rebuild(field.column, field.shape, 0).map_err(RuleSqlError::Template)?;
        if let Some(value) = value {
            let key = literal(field.key).map_err(RuleSqlError::Template)?;
            members.push(format!("{key}: {value}"));
        }
    }
    Ok(format!(
        "json_object(\n    {}\n  )",
        members.join(",\n    ")
    ))
}
