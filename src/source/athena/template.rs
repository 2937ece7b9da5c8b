//! The template language of `sql/`, and nothing else: which templates exist, and how one is
//! rendered from values.
//!
//! Templates know three tags: `{{name}}` (a value), `{{#name}}...{{/name}}` (a section,
//! repeated once per item, or not at all) and `{{> name}}` (a fragment of `sql/fragments/`).
//! Whole-line `--` comments are dropped before rendering: they document the template, not the
//! statement, and Athena's DDL parser is happier without them. Values are written by the
//! renderer, quoted, never by the template; [`Value`]s are made only in `sql.rs`, from
//! validated types.

use super::sql::{Name, SqlError};

/// The templates, by the file name they have in `sql/`.
pub const TEMPLATES: [(&str, &str); 7] = [
    (
        "create_database.sql",
        include_str!("../../../sql/create_database.sql"),
    ),
    (
        "create_table_projection.sql",
        include_str!("../../../sql/create_table_projection.sql"),
    ),
    (
        "update_table_projection.sql",
        include_str!("../../../sql/update_table_projection.sql"),
    ),
    (
        "create_table_managed.sql",
        include_str!("../../../sql/create_table_managed.sql"),
    ),
    (
        "update_table_managed.sql",
        include_str!("../../../sql/update_table_managed.sql"),
    ),
    (
        "add_partitions.sql",
        include_str!("../../../sql/add_partitions.sql"),
    ),
    ("activity.sql", include_str!("../../../sql/activity.sql")),
];

/// Parts of templates, inlined by `{{> name}}`. A fragment also renders on its own, for a
/// statement that shares it without being a template here (the rule query takes
/// `delivered_paths` rendered).
const FRAGMENTS: [(&str, &str); 3] = [
    (
        "cloudtrail_columns",
        include_str!("../../../sql/fragments/cloudtrail_columns.sql"),
    ),
    (
        "delivered_paths",
        include_str!("../../../sql/fragments/delivered_paths.sql"),
    ),
    (
        "projection_properties",
        include_str!("../../../sql/fragments/projection_properties.sql"),
    ),
];

/// A value a template can receive. Only `sql.rs` makes them, from validated types.
pub(super) enum Value {
    /// A table or database, written as a quoted identifier.
    Ident(Vec<Name>),
    /// Written as one quoted literal.
    Text(String),
    /// Written as quoted literals separated by commas.
    Texts(Vec<String>),
    Int(u64),
    /// A section's items; each item's bindings shadow the outer ones.
    Section(Vec<Bindings>),
}

pub(super) type Bindings = Vec<(&'static str, Value)>;

/// How identifiers are quoted: Athena's DDL is Hive (backticks), its queries Trino (double
/// quotes).
#[derive(Clone, Copy)]
pub(super) enum Dialect {
    Hive,
    Trino,
}

fn quote_literal(text: &str, out: &mut String) {
    out.push('\'');
    out.push_str(&text.replace('\'', "''"));
    out.push('\'');
}

fn write_value(value: &Value, dialect: Dialect, out: &mut String) -> Result<(), String> {
    match value {
        Value::Ident(parts) => {
            let q = match dialect {
                Dialect::Hive => '`',
                Dialect::Trino => '"',
            };
            let quoted: Vec<String> = parts
                .iter()
                .map(|p| format!("{q}{}{q}", p.as_str()))
                .collect();
            out.push_str(&quoted.join("."));
        }
        Value::Text(t) => quote_literal(t, out),
        Value::Texts(list) => {
            if list.is_empty() {
                return Err("an empty list cannot be written as SQL".into());
            }
            for (i, t) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote_literal(t, out);
            }
        }
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Section(_) => return Err("a section used as a value".into()),
    }
    Ok(())
}

fn lookup<'a>(name: &str, scopes: &[&'a Bindings]) -> Result<&'a Value, String> {
    scopes
        .iter()
        .rev()
        .find_map(|s| s.iter().find(|(n, _)| *n == name).map(|(_, v)| v))
        .ok_or_else(|| format!("no value for `{{{{{name}}}}}`"))
}

fn expand(
    text: &str,
    scopes: &[&Bindings],
    dialect: Dialect,
    out: &mut String,
) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or("a `{{` is never closed")?;
        let tag = after[..close].trim();
        rest = &after[close + 2..];
        if let Some(name) = tag.strip_prefix('#') {
            let end_tag = format!("{{{{/{name}}}}}");
            let end = rest
                .find(&end_tag)
                .ok_or_else(|| format!("section `{name}` is never closed"))?;
            // Section tags sit on lines of their own; those lines leave no blank line behind.
            let body = &rest[..end];
            let body = body.strip_prefix('\n').unwrap_or(body);
            rest = &rest[end + end_tag.len()..];
            rest = rest.strip_prefix('\n').unwrap_or(rest);
            let Value::Section(items) = lookup(name, scopes)? else {
                return Err(format!("`{name}` is a value, not a section"));
            };
            for item in items {
                let mut inner = scopes.to_vec();
                inner.push(item);
                expand(body, &inner, dialect, out)?;
            }
        } else if tag.starts_with('/') || tag.starts_with('>') {
            return Err(format!("unexpected `{{{{{tag}}}}}`"));
        } else {
            write_value(lookup(tag, scopes)?, dialect, out)?;
        }
    }
    out.push_str(rest);
    Ok(())
}

/// Inlines fragments and drops whole-line comments.
fn prepare(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") {
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix("{{>")
            .and_then(|r| r.strip_suffix("}}"))
        {
            let name = name.trim();
            let (_, fragment) = FRAGMENTS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| format!("no fragment `{name}` in sql/fragments/"))?;
            out.push_str(&prepare(fragment)?);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// Renders a template of `sql/` (by file name) or a fragment (by name) with `bindings`.
pub(super) fn render(
    template: &'static str,
    dialect: Dialect,
    bindings: &Bindings,
) -> Result<String, SqlError> {
    let problem = |problem: String| SqlError::Template { template, problem };
    let (_, text) = TEMPLATES
        .iter()
        .chain(FRAGMENTS.iter())
        .find(|(n, _)| *n == template)
        .ok_or_else(|| problem("not one of the templates or fragments in sql/".into()))?;
    let prepared = prepare(text).map_err(problem)?;
    let mut out = String::with_capacity(prepared.len() + 256);
    expand(&prepared, &[bindings], dialect, &mut out).map_err(problem)?;
    Ok(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_their_quotes_whatever_reaches_them() {
        let mut out = String::new();
        write_value(&Value::Text("it's".into()), Dialect::Trino, &mut out).unwrap();
        assert_eq!(out, "'it''s'");
    }

    #[test]
    fn unknown_placeholders_and_unclosed_sections_are_errors() {
        let b: Bindings = vec![("a", Value::Int(1))];
        let mut out = String::new();
        assert!(expand("{{b}}", &[&b], Dialect::Trino, &mut out).is_err());
        assert!(expand("{{#a}}x", &[&b], Dialect::Trino, &mut out).is_err());
        assert!(expand("{{#a}}x{{/a}}", &[&b], Dialect::Trino, &mut out).is_err());
        assert!(expand("{{a", &[&b], Dialect::Trino, &mut out).is_err());
    }
}
