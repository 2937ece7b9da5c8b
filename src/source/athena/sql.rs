//! The statements trailhound sends to Athena: the templates of `sql/`, compiled in, rendered
//! with validated values only.
//!
//! Nothing here formats text from outside into SQL. Every value a template receives is built
//! from a type that was checked when it was made (an [`AccountId`], a [`Region`], a [`Day`], a
//! [`Name`], a [`LogsLocation`]), and is written as a quoted literal or a quoted identifier by
//! the renderer itself, so a template cannot leave a value unquoted either. Quotes are still
//! doubled on the way out, so a future type with a laxer check cannot break out of a literal.
//!
//! The template language itself is in `template.rs`.

use std::fmt;

use crate::cloudtrail::{AccountId, Region, Span, Timestamp};
use crate::config::aws::is_bucket_name;
use crate::config::{AthenaConfig, PartitionMode, TrailConfig};
use crate::source::Samples;
use crate::window::Window;

use super::template::{render, Bindings, Dialect, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("{field}: `{value}` {why}")]
    Setting {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "trail.regions is empty: the Athena table partitions by region, so list every region \
         the trail delivers for (for example [\"us-east-1\", \"eu-west-1\"])"
    )]
    NoRegions,
    #[error("SQL template {template}: {problem}")]
    Template {
        template: &'static str,
        problem: String,
    },
}

fn setting(field: &'static str, value: &str, why: &'static str) -> SqlError {
    SqlError::Setting {
        field,
        value: value.chars().take(80).collect(),
        why,
    }
}

/// A database or table name: lowercase ASCII letters, digits and underscores, as Athena and
/// Glue store them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, SqlError> {
        let ok = !text.is_empty()
            && text.len() <= 128
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Name(text.to_string()))
        } else {
            Err(setting(
                field,
                text,
                "must be lowercase letters, digits and underscores",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A delivery day, the value of the `delivery_date` partition: `YYYY/MM/DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    midnight: Timestamp,
}

impl Day {
    pub fn of(t: Timestamp) -> Self {
        Day {
            midnight: t.day_start(),
        }
    }

    /// Parses `YYYY/MM/DD`, a real calendar day.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, SqlError> {
        let b = text.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'/'
            && b[7] == b'/'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        let number = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<i64>().ok());
        let day = if shaped {
            match (number(0..4), number(5..7), number(8..10)) {
                (Some(y), Some(m), Some(d)) => Timestamp::from_civil(y, m, d, 0, 0, 0),
                _ => None,
            }
        } else {
            None
        };
        day.map(Day::of)
            .ok_or_else(|| setting(field, text, "must be a day like 2020/01/01"))
    }

    /// Every day `window` touches: its delivery-time bounds are half-open, so a window ending
    /// at midnight does not touch the next day.
    pub fn covering(window: &Window) -> Vec<Day> {
        let mut days = Vec::new();
        let mut day = window.start.day_start();
        while day < window.end {
            days.push(Day { midnight: day });
            day = day.saturating_add(Span::days(1));
        }
        days
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.midnight.date();
        write!(f, "{y:04}/{m:02}/{d:02}")
    }
}

/// Where CloudTrail's `AWSLogs/` lies: `s3://BUCKET/[PREFIX/]AWSLogs/[o-ORG/]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogsLocation {
    bucket: String,
    prefix: String,
    org: Option<String>,
}

impl LogsLocation {
    pub fn new(trail: &TrailConfig) -> Result<Self, SqlError> {
        if !is_bucket_name(&trail.bucket) {
            return Err(setting(
                "trail.bucket",
                &trail.bucket,
                "is not an S3 bucket name",
            ));
        }
        // S3's "safe" key characters only: no quotes, no `$`, no backslash, no `//`.
        let prefix_ok = trail.prefix.is_empty()
            || (!trail.prefix.starts_with('/')
                && !trail.prefix.ends_with('/')
                && !trail.prefix.contains("//")
                && trail
                    .prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!-_.*()/".contains(&b)));
        if !prefix_ok {
            return Err(setting(
                "trail.prefix",
                &trail.prefix,
                "must be S3 key characters (letters, digits, ! - _ . * ( ) /) with no slash at \
                 either end",
            ));
        }
        if let Some(org) = &trail.org_id {
            let ok = org.len() <= 34
                && org.strip_prefix("o-").is_some_and(|rest| {
                    !rest.is_empty()
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                });
            if !ok {
                return Err(setting(
                    "trail.org_id",
                    org,
                    "is not an organization id like o-a1b2c3d4e5",
                ));
            }
        }
        Ok(LogsLocation {
            bucket: trail.bucket.clone(),
            prefix: trail.prefix.clone(),
            org: trail.org_id.clone(),
        })
    }

    /// The table's LOCATION: the folder that holds one folder per account.
    pub fn root(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let org = self
            .org
            .as_ref()
            .map(|o| format!("{o}/"))
            .unwrap_or_default();
        format!("s3://{}/{prefix}AWSLogs/{org}", self.bucket)
    }

    fn day_folder(&self, account: &AccountId, region: &Region, day: Day) -> String {
        format!("{}{account}/CloudTrail/{region}/{day}/", self.root())
    }

    /// What every log object CloudTrail delivers at `minute` starts with, as Athena's
    /// `"$path"` spells it: the day folder, then the name up to and including the delivery
    /// stamp (`.../ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ`); the random part follows.
    fn object_stem(&self, account: &AccountId, region: &Region, day: Day, minute: &str) -> String {
        format!(
            "{}{account}_CloudTrail_{region}_{minute}",
            self.day_folder(account, region, day)
        )
    }
}

/// One region's objects of a window, as a half-open range of `"$path"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PathRange {
    pub from: String,
    pub until: String,
}

/// The validated settings every statement is rendered from.
#[derive(Clone, Debug)]
pub struct SqlSettings {
    database: Name,
    table: Name,
    logs: LogsLocation,
    regions: Vec<Region>,
    projection_start: Day,
}

impl SqlSettings {
    /// Checks again what the statements will hold, so that a config built in code (not loaded
    /// and validated from a file) cannot reach SQL either.
    pub fn new(trail: &TrailConfig, athena: &AthenaConfig) -> Result<Self, SqlError> {
        let mut regions = Vec::new();
        for r in &trail.regions {
            let region = Region::parse(r)
                .map_err(|_| setting("trail.regions", r, "is not a region name"))?;
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
        if regions.is_empty() {
            return Err(SqlError::NoRegions);
        }
        Ok(SqlSettings {
            database: Name::parse("athena.database", &athena.database)?,
            table: Name::parse("athena.table", &athena.table)?,
            logs: LogsLocation::new(trail)?,
            regions,
            projection_start: Day::parse("athena.projection_start", &athena.projection_start)?,
        })
    }

    pub fn database(&self) -> &Name {
        &self.database
    }

    pub fn table(&self) -> &Name {
        &self.table
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    fn table_ident(&self) -> Value {
        Value::Ident(vec![self.database.clone(), self.table.clone()])
    }

    pub fn create_database(&self) -> Result<String, SqlError> {
        let b = vec![("database", Value::Ident(vec![self.database.clone()]))];
        render("create_database.sql", Dialect::Hive, &b)
    }

    fn projection_bindings(&self, accounts: Option<&[AccountId]>) -> Bindings {
        let listed: Vec<String> = accounts
            .unwrap_or_default()
            .iter()
            .map(|a| a.to_string())
            .collect();
        let regions: Vec<&str> = self.regions.iter().map(Region::as_str).collect();
        let one = || vec![Vec::new()];
        let (injected, enumerated) = if listed.is_empty() {
            (one(), Vec::new())
        } else {
            (
                Vec::new(),
                vec![vec![("accounts", Value::Text(listed.join(",")))]],
            )
        };
        vec![
            ("table", self.table_ident()),
            ("location", Value::Text(self.logs.root())),
            ("accounts_injected", Value::Section(injected)),
            ("accounts_listed", Value::Section(enumerated)),
            ("regions", Value::Text(regions.join(","))),
            (
                "projection_range",
                Value::Text(format!("{},NOW", self.projection_start)),
            ),
            (
                "location_template",
                Value::Text(format!(
                    "{}${{account}}/CloudTrail/${{region}}/${{delivery_date}}",
                    self.logs.root()
                )),
            ),
        ]
    }

    /// `CREATE EXTERNAL TABLE IF NOT EXISTS` for `mode`. With projection, `accounts` lists the
    /// accounts to enumerate; `None` (or an empty list) injects the account from each query.
    pub fn create_table(
        &self,
        mode: PartitionMode,
        accounts: Option<&[AccountId]>,
    ) -> Result<String, SqlError> {
        match mode {
            PartitionMode::Projection => render(
                "create_table_projection.sql",
                Dialect::Hive,
                &self.projection_bindings(accounts),
            ),
            PartitionMode::Managed => render(
                "create_table_managed.sql",
                Dialect::Hive,
                &vec![
                    ("table", self.table_ident()),
                    ("location", Value::Text(self.logs.root())),
                ],
            ),
        }
    }

    /// Brings an existing table's partition properties in line with `mode` and the config.
    pub fn update_table(
        &self,
        mode: PartitionMode,
        accounts: Option<&[AccountId]>,
    ) -> Result<String, SqlError> {
        match mode {
            PartitionMode::Projection => render(
                "update_table_projection.sql",
                Dialect::Hive,
                &self.projection_bindings(accounts),
            ),
            PartitionMode::Managed => render(
                "update_table_managed.sql",
                Dialect::Hive,
                &vec![("table", self.table_ident())],
            ),
        }
    }

    /// The partitions of `account` for every configured region on each of `days`.
    pub fn add_partitions(&self, account: &AccountId, days: &[Day]) -> Result<String, SqlError> {
        let mut items = Vec::new();
        for day in days {
            for region in &self.regions {
                items.push(vec![
                    ("account", Value::Text(account.to_string())),
                    ("region", Value::Text(region.to_string())),
                    ("day", Value::Text(day.to_string())),
                    (
                        "location",
                        Value::Text(self.logs.day_folder(account, region, *day)),
                    ),
                ]);
            }
        }
        let b = vec![
            ("table", self.table_ident()),
            ("partitions", Value::Section(items)),
        ];
        render("add_partitions.sql", Dialect::Hive, &b)
    }

    /// The activity query of one account and delivery-time window.
    pub fn activity(&self, account: &AccountId, window: &Window) -> Result<String, SqlError> {
        let days: Vec<String> = Day::covering(window).iter().map(Day::to_string).collect();
        let b = vec![
            ("table", self.table_ident()),
            ("account", Value::Text(account.to_string())),
            ("days", Value::Texts(days)),
            ("delivered_from", Value::Text(delivery_bound(window.start))),
            ("delivered_until", Value::Text(delivery_bound(window.end))),
            ("sample_cap", Value::Int(Samples::CAP as u64)),
            ("path_ranges", self.path_range_items(account, window)),
        ];
        render("activity.sql", Dialect::Trino, &b)
    }

    /// The condition on `"$path"` alone that both window queries (activity and rules) hold:
    /// `sql/fragments/delivered_paths.sql`, rendered. On its own it chooses exactly the
    /// objects of `account` delivered in `window` in the configured regions.
    pub fn delivered_paths(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<String, SqlError> {
        let b = vec![("path_ranges", self.path_range_items(account, window))];
        render("delivered_paths", Dialect::Trino, &b)
    }

    /// Per configured region, the objects of `account` delivered in `window` as one half-open
    /// range of `"$path"`: from the name stem of the window's first delivery minute to that of
    /// its end (see [`delivery_bound`]). A region's keys sort by day folder, then by the
    /// fixed-width delivery stamp of the name, so the range holds exactly the objects whose
    /// stamp `m` has `ceil(start) <= m < ceil(end)`. The lower bound lies in the folder of the
    /// window's first day (the first partition the query names), the upper one in the folder
    /// of its own minute (the next day's, for an end in the last minute before midnight).
    /// Then even an object filed in one of the query's partitions under a stamp of another
    /// day is in the range when the regexp filter keeps it (CloudTrail files none so). Only
    /// an object named for another account or region than its folder's is left out, as the
    /// S3 source leaves it out.
    pub(super) fn path_ranges(&self, account: &AccountId, window: &Window) -> Vec<PathRange> {
        let (from, until) = (delivery_bound(window.start), delivery_bound(window.end));
        let from_day = Day::of(window.start);
        let until_day = Day::of(delivery_minute(window.end));
        self.regions
            .iter()
            .map(|region| PathRange {
                from: self.logs.object_stem(account, region, from_day, &from),
                until: self.logs.object_stem(account, region, until_day, &until),
            })
            .collect()
    }

    fn path_range_items(&self, account: &AccountId, window: &Window) -> Value {
        let items = self
            .path_ranges(account, window)
            .into_iter()
            .map(|r| {
                vec![
                    ("path_from", Value::Text(r.from)),
                    ("path_until", Value::Text(r.until)),
                ]
            })
            .collect();
        Value::Section(items)
    }
}

/// A window bound as the delivery stamp of object names, `YYYYMMDDTHHmmZ`. Object names carry
/// whole minutes, so the bound is rounded up: an object delivered at minute `m` is in
/// `[start, end)` exactly when `ceil(start) <= m < ceil(end)`. The rule query shares it.
pub(super) fn delivery_bound(t: Timestamp) -> String {
    delivery_minute(t).compact()
}

/// `t` rounded up to the whole minute.
fn delivery_minute(t: Timestamp) -> Timestamp {
    let floor = t.floor_to(Span::minutes(1));
    if floor == t {
        t
    } else {
        floor.saturating_add(Span::minutes(1))
    }
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
