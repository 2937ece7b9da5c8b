//! The enabled rules' `when` conditions as Athena SQL: Athena filters, Rust aggregates.
//!
//! One query per account and window (`sql/rule_events.sql`, the same objects as the activity
//! query) returns the records that some enabled rule's `when` may hold for, each as a JSON
//! object shaped like the CloudTrail record. The hunt feeds them to the same
//! [`RuleEngine`](crate::detect::rules::RuleEngine) the direct scan feeds; the engine tests
//! `when` again on every record, so the SQL only has to keep every record the rules need.
//!
//! What compiles, and how:
//! - Paths into struct columns (`userIdentity.sessionContext.sessionIssuer.arn`) become struct
//!   access, by the table's own column names; a key must be spelled exactly as CloudTrail
//!   spells it (rules compare keys case-sensitively, the table does not).
//! - Paths into the columns the table keeps as JSON text (`requestParameters`,
//!   `responseElements`, `additionalEventData`, `serviceEventDetails`, `edgeDeviceDetails`)
//!   walk the parsed value key by key with `json_extract` and a `$["key"]` path, crossing an
//!   array element by element as the engine does (a path through `instancesSet.items` reaches
//!   every item's `minCount`); the test holds when it holds for any value reached,
//!   through `cardinality(filter(..., x -> ...)) > 0` (Trino's `any_match` would read better,
//!   but DuckDB, which runs the tests, has no such function). The JSON type of each value is
//!   checked, so the string `"10"` does not equal the number 10, as in the engine.
//! - `resources` (an array of structs) is tested element by element the same way.
//! - Arrays are crossed one level per step; an array inside an array (which CloudTrail does not
//!   write on the paths rules read) makes the test SQL NULL, "cannot tell here", instead of
//!   true or false. Conditions combine in SQL's three-valued logic and the query keeps every
//!   record whose condition is not false, so such records are returned and the engine decides:
//!   the filter is exact everywhere else, and never narrower than the rules.
//! - `regex` becomes `regexp_like` anchored with `\A(?:...)\z`, rewritten from the engine's
//!   syntax subset into one every engine reads alike (`.` as `[^\n]`, `\d` `\w` `\s` as
//!   ASCII classes, `^` `$` as `\A` `\z`, metacharacters escaped, controls as `\xHH`).
//! - `wildcard` and `prefix` become `LIKE ... ESCAPE '\'`; `ignore_case` compares `lower()`.
//! - `gt`/`gte`/`lt`/`lte` read numbers with `TRY_CAST(... AS DOUBLE)`, finite only.
//!
//! What does not compile is an error naming the rule, the field and why, never a silently
//! different filter: paths the table has no column for, keys that are not plain names (see
//! [`check_key`]), tests that can never hold on how the table types a field (a number
//! compared with a text column), and case-insensitive patterns with non-ASCII letters.
//!
//! Every literal goes through [`literal`] (quotes doubled, NUL refused); column names come only
//! from the static schema below, never from a rule.
//!
//! Where SQL and the engine can still differ, on values CloudTrail does not write: `?` in a
//! wildcard is one character in SQL and one byte in the engine (non-ASCII text); `TRY_CAST` may
//! read numbers Rust's parser refuses (surrounding spaces); `lower()` and Rust's lowercase may
//! fold rare Unicode letters differently; `readOnly` and `managementEvent` are rebuilt as
//! JSON bools, as CloudTrail writes them. The engine's second look catches any row SQL keeps
//! too many; none of these can make SQL drop a record the engine would match, except the
//! wildcard and case-folding ones on non-ASCII text.

mod condition;
mod literal;
mod record;
mod regex;
mod table;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::rows::ResultTable;
use super::sql::{delivery_bound, Day, SqlSettings};
use crate::cloudtrail::AccountId;
use crate::detect::rules::RuleSet;
use crate::window::Window;

pub use condition::compile_where;
pub use literal::{check_key, literal};
pub use record::compile_record;
pub use regex::regex_to_sql;

/// Why the rules cannot run as Athena SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSqlError {
    #[error(
        "rule `{rule}` ({origin}), field `{field}`: {why}; this rule cannot run on Athena \
         (disable it, or hunt with the folder or S3 source)"
    )]
    Test {
        rule: String,
        origin: String,
        field: String,
        why: String,
    },
    #[error(
        "rule `{rule}` ({origin}), key `{key}`: {why}; this rule cannot run on Athena \
         (disable it, or hunt with the folder or S3 source)"
    )]
    Key {
        rule: String,
        origin: String,
        key: String,
        why: String,
    },
    #[error("no rule is enabled, so there is no rule query to run")]
    NoRules,
    #[error("SQL template rule_events.sql: {0}")]
    Template(String),
    /// The shared part of the window queries (`delivered_paths`) did not render.
    #[error(transparent)]
    Sql(#[from] super::sql::SqlError),
}

/// A result row of the rule query that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule query result row {row}: {problem}")]
pub struct RuleRowError {
    pub row: usize,
    pub problem: String,
}

// --- The query -------------------------------------------------------------------------------

const TEMPLATE: &str = include_str!("../../../../sql/rule_events.sql");

/// The compiled rule query of one rule set, rendered per account and window.
#[derive(Clone, Debug)]
pub struct RuleQuery {
    condition: String,
    record: String,
}

impl RuleQuery {
    pub fn compile(rules: &RuleSet) -> Result<RuleQuery, RuleSqlError> {
        Ok(RuleQuery {
            condition: compile_where(rules)?,
            record: compile_record(rules)?,
        })
    }

    /// The query of `account` in `window`, over the table of `settings`.
    pub fn render(
        &self,
        settings: &SqlSettings,
        account: &AccountId,
        window: &Window,
    ) -> Result<String, RuleSqlError> {
        let quote = |t: &str| literal(t).map_err(RuleSqlError::Template);
        let days: Result<Vec<String>, RuleSqlError> = Day::covering(window)
            .iter()
            .map(|d| quote(&d.to_string()))
            .collect();
        let table = format!(
            "\"{}\".\"{}\"",
            settings.database().as_str(),
            settings.table().as_str()
        );
        // Rendered by the template engine, which quotes every literal of it.
        let paths = settings.delivered_paths(account, window)?;
        let bindings: [(&str, String); 8] = [
            ("table", table),
            ("account", quote(account.as_str())?),
            ("days", days?.join(", ")),
            ("delivered_from", quote(&delivery_bound(window.start))?),
            ("delivered_until", quote(&delivery_bound(window.end))?),
            ("delivered_paths", paths),
            ("record", self.record.clone()),
            ("condition", self.condition.clone()),
        ];
        fill(TEMPLATE, &bindings)
    }
}

/// The full rule query of `rules` for `account` in `window`.
pub fn render(
    settings: &SqlSettings,
    rules: &RuleSet,
    account: &AccountId,
    window: &Window,
) -> Result<String, RuleSqlError> {
    RuleQuery::compile(rules)?.render(settings, account, window)
}

/// Drops whole-line `--` comments (as the template renderer does) and fills `{{name}}` tags
/// with already-quoted values.
fn fill(template: &str, bindings: &[(&str, String)]) -> Result<String, RuleSqlError> {
    let mut text = String::new();
    for line in template.lines() {
        if !line.trim().starts_with("--") {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut out = String::with_capacity(text.len() * 4);
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| RuleSqlError::Template("a `{{` is never closed".into()))?;
        let name = after[..close].trim();
        let value = bindings
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| RuleSqlError::Template(format!("no value for `{{{{{name}}}}}`")))?;
        out.push_str(&value.1);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

// --- Rows ------------------------------------------------------------------------------------

/// The record of one result row, as the engine reads records.
pub fn row_to_record(table: &ResultTable, row: usize) -> Result<Value, RuleRowError> {
    let error = |problem: String| RuleRowError { row, problem };
    let index = table
        .columns
        .iter()
        .position(|c| c == "record")
        .ok_or_else(|| error("the result has no `record` column".into()))?;
    let text = table
        .rows
        .get(row)
        .ok_or_else(|| error("no such row".into()))?
        .get(index)
        .and_then(Option::as_deref)
        .ok_or_else(|| error("`record` is NULL".into()))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| error(format!("`record` is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(error("`record` is not a JSON object".into()));
    }
    Ok(value)
}

/// Every row's record as JSON text, for `ActivityBatch::rule_records`.
pub fn rule_records(table: &ResultTable) -> Result<Vec<String>, RuleRowError> {
    (0..table.rows.len())
        .map(|row| row_to_record(table, row).map(|v| v.to_string()))
        .collect()
}
