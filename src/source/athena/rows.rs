//! Typing the activity query's result into Activity rows.
//!
//! Athena returns every value as text. The columns are found by name, so the query can be
//! reordered without breaking this side. Each row's identity fields go through
//! [`Principal::of`], the one place principals are normalised, and rows that land on the same
//! principal (the query groups by raw fields) are merged. The tests feed this the rows DuckDB
//! computes for the same SQL, so what is proved there is what runs against Athena.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::cloudtrail::record::{
    Flag, Lenient, OnBehalfOf, Record, SessionContext, SessionIssuer, Text, UserIdentity,
};
use crate::cloudtrail::{AccountId, Action, Outcome, Principal, Timestamp};
use crate::source::{Activity, Samples, ScanReport};

/// A query result as text, the way Athena's `GetQueryResults` gives it: `None` is SQL NULL.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ResultTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// A result that does not have the shape the activity query gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("activity result row {row}, column `{column}`: {problem}")]
pub struct RowError {
    pub row: usize,
    pub column: &'static str,
    pub problem: String,
}

/// Why the records of an unusable group are not activity; the scan counts records it cannot
/// decode by the decoder's reason, and this is the same loss.
pub const UNUSABLE: &str = "missing or malformed eventTime, eventSource or eventName";

/// The columns of sql/activity.sql, in its order: what [`activity_rows`] reads.
pub const COLUMNS: [&str; 34] = [
    "usable",
    "no_identity",
    "identity_type",
    "identity_account",
    "recipient_account",
    "identity_arn",
    "identity_principal_id",
    "identity_user_name",
    "identity_invoked_by",
    "identity_provider",
    "issuer_arn",
    "on_behalf_of_user",
    "on_behalf_of_store",
    "eventsource",
    "eventname",
    "outcome",
    "records",
    "calls",
    "first_time",
    "last_time",
    "regions",
    "regions_distinct",
    "source_ips",
    "source_ips_distinct",
    "user_agents",
    "user_agents_distinct",
    "error_codes",
    "error_codes_distinct",
    "event_ids",
    "event_ids_distinct",
    "read_only_calls",
    "write_calls",
    "logins_without_mfa",
    "instance_calls",
];

/// One result row, with the column positions resolved once per result.
struct Row<'a> {
    n: usize,
    values: &'a [Option<String>],
    index: &'a [usize; COLUMNS.len()],
}

impl<'a> Row<'a> {
    fn error(&self, column: &'static str, problem: impl Into<String>) -> RowError {
        RowError {
            row: self.n,
            column,
            problem: problem.into(),
        }
    }

    fn text(&self, column: &'static str) -> Option<&'a str> {
        let i = COLUMNS.iter().position(|c| *c == column)?;
        self.values.get(self.index[i])?.as_deref()
    }

    fn required(&self, column: &'static str) -> Result<&'a str, RowError> {
        self.text(column)
            .ok_or_else(|| self.error(column, "is NULL"))
    }

    fn count(&self, column: &'static str) -> Result<u64, RowError> {
        match self.text(column) {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| self.error(column, format!("`{v}` is not a count"))),
        }
    }

    fn flag(&self, column: &'static str) -> Result<bool, RowError> {
        match self.required(column)? {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(self.error(column, format!("`{v}` is not true or false"))),
        }
    }

    fn time(&self, column: &'static str) -> Result<Timestamp, RowError> {
        let v = self.required(column)?;
        Timestamp::parse(v).map_err(|e| self.error(column, e.to_string()))
    }

    /// A sample: a JSON array of the smallest distinct values, and how many there were.
    fn samples(&self, column: &'static str, distinct: &'static str) -> Result<Samples, RowError> {
        let values: Vec<String> = match self.text(column) {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json)
                .map_err(|e| self.error(column, format!("not a JSON array of text: {e}")))?,
        };
        let mut samples = Samples::default();
        samples.values.extend(values);
        let distinct = self.count(distinct)?;
        samples.more = distinct.saturating_sub(samples.values.len() as u64);
        Ok(samples)
    }

    fn field(&self, column: &'static str) -> Text<'a> {
        Text(self.text(column).map(Cow::Borrowed))
    }

    /// The record Principal::of reads, rebuilt from the identity columns.
    fn record(&self, time: Timestamp) -> Result<Record<'a>, RowError> {
        let identity = if self.flag("no_identity")? {
            None
        } else {
            Some(UserIdentity {
                kind: self.field("identity_type"),
                principal_id: self.field("identity_principal_id"),
                arn: self.field("identity_arn"),
                account_id: self.field("identity_account"),
                user_name: self.field("identity_user_name"),
                invoked_by: self.field("identity_invoked_by"),
                identity_provider: self.field("identity_provider"),
                session_context: Lenient(Some(SessionContext {
                    session_issuer: Lenient(Some(SessionIssuer {
                        arn: self.field("issuer_arn"),
                        ..SessionIssuer::default()
                    })),
                })),
                on_behalf_of: Lenient(Some(OnBehalfOf {
                    user_id: self.field("on_behalf_of_user"),
                    identity_store_arn: self.field("on_behalf_of_store"),
                })),
                ..UserIdentity::default()
            })
        };
        Ok(Record {
            event_id: Text(None),
            event_time: time,
            event_source: Cow::Borrowed(self.required("eventsource")?),
            event_name: Cow::Borrowed(self.required("eventname")?),
            aws_region: Text(None),
            source_ip: Text(None),
            user_agent: Text(None),
            error_code: Text(None),
            read_only: Flag(None),
            recipient_account_id: self.field("recipient_account"),
            event_type: Text(None),
            user_identity: Lenient(identity),
            additional_event_data: Lenient(None),
        })
    }
}

type RowKey = (String, Action, Outcome);

/// Types the activity query's result into rows of `account`, merged by principal, action and
/// outcome, sorted as the scan sorts them, with the counts of what was not activity.
pub fn activity_rows(
    table: &ResultTable,
    account: &AccountId,
) -> Result<(Vec<Activity>, ScanReport), RowError> {
    let mut index = [0usize; COLUMNS.len()];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = table
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| RowError {
                row: 0,
                column: name,
                problem: "missing from the result".into(),
            })?;
    }
    let mut report = ScanReport::default();
    let mut rows: HashMap<RowKey, Activity> = HashMap::new();
    for (n, values) in table.rows.iter().enumerate() {
        let row = Row {
            n: n + 1,
            values,
            index: &index,
        };
        let records = row.count("records")?;
        let calls = row.count("calls")?;
        report.records += records;
        if !row.flag("usable")? {
            *report.records_bad.entry(UNUSABLE.to_string()).or_default() += records;
            continue;
        }
        report.records_duplicate += records.saturating_sub(calls);
        if calls == 0 {
            continue;
        }
        let first_time = row.time("first_time")?;
        let record = row.record(first_time)?;
        let principal = match Principal::of(&record, account.as_str()) {
            Ok(p) => p,
            Err(why) => {
                *report
                    .records_no_principal
                    .entry(why.reason().to_string())
                    .or_default() += calls;
                continue;
            }
        };
        let outcome_text = row.required("outcome")?;
        let outcome = Outcome::parse(outcome_text)
            .ok_or_else(|| row.error("outcome", format!("`{outcome_text}` is not an outcome")))?;
        let (read_only_calls, write_calls) =
            (row.count("read_only_calls")?, row.count("write_calls")?);
        let activity = Activity {
            action: Action::new(&record.event_source, &record.event_name),
            principal,
            outcome,
            count: calls,
            first_time,
            last_time: row.time("last_time")?,
            regions: row.samples("regions", "regions_distinct")?,
            source_ips: row.samples("source_ips", "source_ips_distinct")?,
            user_agents: row.samples("user_agents", "user_agents_distinct")?,
            error_codes: row.samples("error_codes", "error_codes_distinct")?,
            event_ids: row.samples("event_ids", "event_ids_distinct")?,
            read_only: (read_only_calls + write_calls > 0).then_some(write_calls == 0),
            logins_without_mfa: row.count("logins_without_mfa")?,
            instance_calls: row.count("instance_calls")?,
        };
        let key = (
            activity.principal.key.clone(),
            activity.action.clone(),
            outcome,
        );
        match rows.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(activity),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(activity);
            }
        }
    }
    let mut rows: Vec<Activity> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        (&a.principal.key, &a.action, a.outcome).cmp(&(&b.principal.key, &b.action, b.outcome))
    });
    Ok((rows, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: Vec<Vec<(&str, Option<&str>)>>) -> ResultTable {
        let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        let rows = rows
            .into_iter()
            .map(|given| {
                COLUMNS
                    .iter()
                    .map(|c| {
                        given
                            .iter()
                            .find(|(n, _)| n == c)
                            .and_then(|(_, v)| v.map(str::to_string))
                    })
                    .collect()
            })
            .collect();
        ResultTable { columns, rows }
    }

    fn role_row<'a>(session_pid: &'a str, calls: &'a str) -> Vec<(&'static str, Option<&'a str>)> {
        vec![
            ("usable", Some("true")),
            ("no_identity", Some("false")),
            ("identity_type", Some("AssumedRole")),
            ("identity_principal_id", Some(session_pid)),
            ("issuer_arn", Some("arn:aws:iam::111122223333:role/ci")),
            ("eventsource", Some("s3.amazonaws.com")),
            ("eventname", Some("ListBuckets")),
            ("outcome", Some("success")),
            ("records", Some(calls)),
            ("calls", Some(calls)),
            ("first_time", Some("2024-03-01T10:00:00Z")),
            ("last_time", Some("2024-03-01T10:05:00Z")),
            ("regions", Some(r#"["us-east-1"]"#)),
            ("regions_distinct", Some("1")),
            ("read_only_calls", Some(calls)),
        ]
    }

    #[test]
    fn rows_of_one_principal_are_merged() {
        let t = table(vec![role_row("AROA1", "2"), role_row("AROA2", "3")]);
        let (rows, report) = activity_rows(&t, &AccountId::parse("111122223333").unwrap()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].count, 5);
        assert_eq!(rows[0].principal.key, "arn:aws:iam::111122223333:role/ci");
        assert_eq!(rows[0].read_only, Some(true));
        assert_eq!(report.records_used(), 5);
    }

    #[test]
    fn unusable_duplicate_and_anonymous_records_are_counted() {
        let mut bad = role_row("AROA1", "4");
        bad[0] = ("usable", Some("false"));
        let mut dup = role_row("AROA1", "3");
        dup[9] = ("calls", Some("1"));
        let mut anonymous = role_row("AROA1", "2");
        anonymous[1] = ("no_identity", Some("true"));
        let t = table(vec![bad, dup, anonymous]);
        let (rows, report) = activity_rows(&t, &AccountId::parse("111122223333").unwrap()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(report.records, 9);
        assert_eq!(report.records_bad[UNUSABLE], 4);
        assert_eq!(report.records_duplicate, 2);
        assert_eq!(report.records_no_principal.values().sum::<u64>(), 2);
        assert_eq!(report.records_used(), 1);
    }

    #[test]
    fn a_missing_column_or_a_bad_count_is_an_error_that_names_it() {
        let mut t = table(vec![role_row("AROA1", "x")]);
        let e = activity_rows(&t, &AccountId::parse("111122223333").unwrap()).unwrap_err();
        assert_eq!(e.column, "records");
        t.columns[5] = "something_else".into();
        let e = activity_rows(&t, &AccountId::parse("111122223333").unwrap()).unwrap_err();
        assert_eq!(e.column, "identity_arn");
    }
}
