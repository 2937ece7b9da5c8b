//! The Athena activity source: one query per account and window over the CloudTrail table,
//! for organisations too large to read object by object.
//!
//! - `sql`: the statements of `sql/`, rendered from validated values only.
//! - `query`: running a statement (start, poll with a deadline, retries, results).
//! - `rows`: typing the activity query's result into Activity rows.
//!
//! With partition projection (the default) a hunt runs exactly one statement per account and
//! window: the activity query. With managed partitions it first adds the partitions of the
//! window's days (`ALTER TABLE ... ADD IF NOT EXISTS PARTITION`), once per account and day set
//! in a process. `trailhound tables` ([`ensure_tables`]) creates the database and the table.

pub mod query;
pub mod rows;
pub mod rules_sql;
pub mod sql;
mod template;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tracing::Instrument;

use super::{ActivityBatch, ActivitySource, SourceError};
use crate::cloudtrail::AccountId;
use crate::config::{AthenaConfig, PartitionMode, TrailConfig};
use crate::detect::rules::RuleSet;
use crate::window::Window;

pub use query::{AthenaCounters, QueryError, QueryPolicy, StatementKind};
pub use rows::{activity_rows, ResultTable, RowError};
pub use sql::{Day, SqlError, SqlSettings};

#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("Athena query {id} for {what}: {source}")]
    Rows {
        id: String,
        what: String,
        source: RowError,
    },
    #[error(transparent)]
    RuleSql(#[from] rules_sql::RuleSqlError),
    #[error("Athena query {id} for {what}: {source}")]
    RuleRows {
        id: String,
        what: String,
        source: rules_sql::RuleRowError,
    },
}

/// Reads activity through Athena.
pub struct AthenaSource {
    runner: query::QueryRunner,
    sql: SqlSettings,
    mode: PartitionMode,
    counters: Arc<query::Counters>,
    /// Managed mode: (account, days) whose partitions this process has added already.
    added: Mutex<HashSet<(AccountId, Vec<Day>)>>,
    /// The enabled rules as one query per account and window, when there are rules.
    rules: Option<rules_sql::RuleQuery>,
}

fn runner(
    client: aws_sdk_athena::Client,
    athena: &AthenaConfig,
    policy: QueryPolicy,
    counters: Arc<query::Counters>,
) -> query::QueryRunner {
    query::QueryRunner::new(
        client,
        &athena.workgroup,
        &athena.output_location,
        policy,
        counters,
    )
}

/// The query policy the config asks for.
pub fn query_policy(athena: &AthenaConfig) -> QueryPolicy {
    let seconds = |span: crate::cloudtrail::Span| {
        std::time::Duration::from_secs(span.as_seconds().max(1) as u64)
    };
    QueryPolicy::new(
        seconds(athena.query_timeout),
        seconds(athena.throttle_patience),
    )
}

impl AthenaSource {
    /// A source over the table of `athena`, on the trail of `trail`. `client` comes from
    /// [`crate::aws::athena`].
    pub fn new(
        client: aws_sdk_athena::Client,
        trail: &TrailConfig,
        athena: &AthenaConfig,
    ) -> Result<Self, AthenaError> {
        Self::with_policy(client, trail, athena, query_policy(athena))
    }

    /// As [`AthenaSource::new`], with other waits and retries (tests shorten them).
    pub fn with_policy(
        client: aws_sdk_athena::Client,
        trail: &TrailConfig,
        athena: &AthenaConfig,
        policy: QueryPolicy,
    ) -> Result<Self, AthenaError> {
        let counters = Arc::new(query::Counters::default());
        Ok(AthenaSource {
            runner: runner(client, athena, policy, counters.clone()),
            sql: SqlSettings::new(trail, athena)?,
            mode: athena.partitions,
            counters,
            added: Mutex::new(HashSet::new()),
            rules: None,
        })
    }

    /// Also runs `rules`: their conditions become one more query per account and window,
    /// whose rows are the records the rules want. A rule that cannot be expressed in Athena
    /// SQL is an error here, before anything is hunted, naming the rule and the field.
    pub fn with_rules(mut self, rules: &RuleSet) -> Result<Self, AthenaError> {
        self.rules = if rules.enabled().next().is_some() {
            Some(rules_sql::RuleQuery::compile(rules)?)
        } else {
            None
        };
        Ok(self)
    }

    /// The records of `account` in `window` that the rules want, as JSON texts.
    async fn rule_records(
        &self,
        rules: &rules_sql::RuleQuery,
        account: &AccountId,
        window: &Window,
    ) -> Result<(Vec<String>, u64), AthenaError> {
        let sql = rules.render(&self.sql, account, window)?;
        let what = format!("the rule events of account {account} in window {window}");
        let done = self
            .runner
            .execute(&sql, StatementKind::Rules, &what)
            .await?;
        let table = self.runner.results(&done.id, &what).await?;
        let records = rules_sql::rule_records(&table).map_err(|source| AthenaError::RuleRows {
            id: done.id.clone(),
            what,
            source,
        })?;
        Ok((records, done.bytes_scanned))
    }

    /// What this source has asked of Athena so far.
    pub fn counters(&self) -> AthenaCounters {
        self.counters.snapshot()
    }

    /// The rule query this source sends for `account` and `window`, when it runs rules.
    pub fn rule_sql(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Option<Result<String, rules_sql::RuleSqlError>> {
        self.rules
            .as_ref()
            .map(|rules| rules.render(&self.sql, account, window))
    }

    /// The activity query this source sends for `account` and `window`.
    pub fn activity_sql(&self, account: &AccountId, window: &Window) -> Result<String, SqlError> {
        self.sql.activity(account, window)
    }

    async fn add_partitions(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<(), AthenaError> {
        let days = Day::covering(window);
        let key = (account.clone(), days.clone());
        if self.added.lock().is_ok_and(|a| a.contains(&key)) {
            return Ok(());
        }
        let sql = self.sql.add_partitions(account, &days)?;
        let what = format!("the partitions of account {account} for window {window}");
        self.runner.execute(&sql, StatementKind::Ddl, &what).await?;
        if let Ok(mut added) = self.added.lock() {
            added.insert(key);
        }
        Ok(())
    }

    /// The activity of one account and window, with the errors as they are.
    pub async fn read(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, AthenaError> {
        if self.mode == PartitionMode::Managed {
            self.add_partitions(account, window).await?;
        }
        let sql = self.sql.activity(account, window)?;
        let what = format!("the activity of account {account} in window {window}");
        let done = self
            .runner
            .execute(&sql, StatementKind::Activity, &what)
            .await?;
        let table = self.runner.results(&done.id, &what).await?;
        let (rows, mut report) =
            activity_rows(&table, account).map_err(|source| AthenaError::Rows {
                id: done.id.clone(),
                what,
                source,
            })?;
        // Athena reads the objects; what it scanned is the nearest to bytes read.
        report.bytes_read += done.bytes_scanned;
        let rule_records = match &self.rules {
            Some(rules) => {
                let (records, scanned) = self.rule_records(rules, account, window).await?;
                report.bytes_read += scanned;
                Some(records)
            }
            None => None,
        };
        Ok(ActivityBatch {
            account: account.clone(),
            window: *window,
            rows,
            report,
            rule_records,
        })
    }
}

#[async_trait]
impl ActivitySource for AthenaSource {
    fn athena_counters(&self) -> Option<AthenaCounters> {
        Some(self.counters())
    }

    /// Athena does not know which accounts exist: the muster does. This returns an error so
    /// that a run configured to take its accounts from the source (`muster.accounts_from =
    /// "folder"`) stops with a clear message instead of hunting nothing.
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError> {
        Err(SourceError::Scan(
            "the Athena source cannot list accounts: set muster.accounts_from to \
             \"organizations\" or \"static\""
                .into(),
        ))
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError> {
        let span = tracing::debug_span!("athena", account = %account, window = %window);
        self.read(account, window)
            .instrument(span)
            .await
            .map_err(|e| SourceError::Scan(e.to_string()))
    }
}

/// What `trailhound tables` did.
#[derive(Clone, Debug)]
pub struct TablesReport {
    /// The statements run, by template name, in order.
    pub statements: Vec<&'static str>,
    pub counters: AthenaCounters,
}

/// Creates the database and the CloudTrail table if they do not exist, and brings the
/// table's partition settings in line with the config: projection rules (regions, listed
/// accounts, start day) or projection turned off for managed partitions. Safe to run again:
/// every statement is `IF NOT EXISTS` or sets properties to the same values.
///
/// `accounts`: with projection, the accounts to enumerate; `None` or empty injects the
/// account from each query (the table then serves any account the trail holds).
pub async fn ensure_tables(
    client: aws_sdk_athena::Client,
    trail: &TrailConfig,
    athena: &AthenaConfig,
    accounts: Option<&[AccountId]>,
) -> Result<TablesReport, AthenaError> {
    ensure_tables_with(client, trail, athena, accounts, query_policy(athena)).await
}

/// As [`ensure_tables`], with other waits and retries.
pub async fn ensure_tables_with(
    client: aws_sdk_athena::Client,
    trail: &TrailConfig,
    athena: &AthenaConfig,
    accounts: Option<&[AccountId]>,
    policy: QueryPolicy,
) -> Result<TablesReport, AthenaError> {
    let sql = SqlSettings::new(trail, athena)?;
    let counters = Arc::new(query::Counters::default());
    let runner = runner(client, athena, policy, counters.clone());
    let mode = athena.partitions;
    let (create, update) = match mode {
        PartitionMode::Projection => ("create_table_projection.sql", "update_table_projection.sql"),
        PartitionMode::Managed => ("create_table_managed.sql", "update_table_managed.sql"),
    };
    let table = format!("{}.{}", sql.database().as_str(), sql.table().as_str());
    let steps = [
        (
            "create_database.sql",
            sql.create_database()?,
            format!("database {}", sql.database().as_str()),
        ),
        (
            create,
            sql.create_table(mode, accounts)?,
            format!("table {table}"),
        ),
        (
            update,
            sql.update_table(mode, accounts)?,
            format!("the partition settings of {table}"),
        ),
    ];
    let mut statements = Vec::new();
    for (name, text, what) in steps {
        runner.execute(&text, StatementKind::Ddl, &what).await?;
        statements.push(name);
    }
    Ok(TablesReport {
        statements,
        counters: counters.snapshot(),
    })
}
