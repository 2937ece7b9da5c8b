//! Running one statement on Athena: start it, wait for it within a deadline, read its result.
//!
//! Athena is asynchronous: `StartQueryExecution` returns an id, the query is QUEUED, then
//! RUNNING, then SUCCEEDED, FAILED or CANCELLED. Polling backs off with jitter so that many
//! accounts hunted at once do not poll in step. One place, `classify`, decides what is worth
//! repeating:
//!
//! - throttling (`TooManyRequestsException`, which is also how Athena refuses a start beyond
//!   the account's quota of active queries, `ThrottlingException`, "Rate exceeded") is waited
//!   out with capped, jittered exponential backoff for as long as `athena.throttle_patience`
//!   allows, however many tries that takes: with more hunts at once than the quota, starts are
//!   refused until earlier queries end, which takes as long as those queries run;
//! - failures in transit, answers slower than the call timeout and Athena's internal errors
//!   are tried a bounded number of times (a start is sent again under the same
//!   `ClientRequestToken`, so a start whose answer was lost does not start a second query);
//! - anything else fails the call at once.
//!
//! A query that FAILS says why (`StateChangeReason`); one that fails for a reason Athena marks
//! retryable is started again while attempts remain. Every error names the call and what it
//! was for (the account and window), so a failed account is reported by name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_athena::config::http::HttpResponse;
use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionState, ResultConfiguration};
use tokio::time::Instant;

use super::rows::ResultTable;

/// The longest one attempt of one Athena call may take when the SDK config sets no limit:
/// Athena's control-plane calls answer in well under a second; a result page is at most 1,000
/// rows.
const CALL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait and how often to retry.
#[derive(Clone, Copy, Debug)]
pub struct QueryPolicy {
    /// The longest a statement may take, queued and running (`athena.query_timeout`).
    pub timeout: Duration,
    /// The first pause between two status polls; it grows by half each poll up to `poll_max`.
    pub poll_first: Duration,
    pub poll_max: Duration,
    /// Attempts of one call that fails in transit (or of a query that failed retryably)
    /// before giving up.
    pub attempts: u32,
    /// How long one call may keep being throttled before giving up
    /// (`athena.throttle_patience`); throttled tries are not counted against `attempts`.
    pub throttle_patience: Duration,
    /// Backoff before the first retry; it doubles each retry up to `backoff_max`.
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

impl QueryPolicy {
    /// The production waits: `timeout` per statement once Athena has accepted it, and
    /// `throttle_patience` per call for throttling.
    pub fn new(timeout: Duration, throttle_patience: Duration) -> Self {
        QueryPolicy {
            timeout,
            poll_first: Duration::from_millis(400),
            poll_max: Duration::from_secs(5),
            attempts: 6,
            throttle_patience,
            backoff_first: Duration::from_millis(500),
            // Long enough that hundreds of refused hunts do not hammer the API, short enough
            // that a freed quota slot is taken within seconds.
            backoff_max: Duration::from_secs(20),
        }
    }
}

/// What the Athena source has done so far in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AthenaCounters {
    /// Statements Athena accepted (`StartQueryExecution` succeeded), of any kind.
    pub queries_started: u64,
    /// Of those, activity queries (one per account and window).
    pub activity_queries: u64,
    /// Of those, rule queries (one per account and window when rules are enabled).
    pub rule_queries: u64,
    /// Of those, DDL: database, table, partitions.
    pub ddl_statements: u64,
    /// `Statistics.DataScannedInBytes` summed over the statements that succeeded.
    pub bytes_scanned: u64,
    /// Calls repeated after throttling or a transient failure, and queries restarted after a
    /// retryable failure.
    pub retries: u64,
    /// Statements that ended FAILED, CANCELLED or timed out.
    pub queries_failed: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    queries_started: AtomicU64,
    activity_queries: AtomicU64,
    rule_queries: AtomicU64,
    ddl_statements: AtomicU64,
    bytes_scanned: AtomicU64,
    retries: AtomicU64,
    queries_failed: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> AthenaCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AthenaCounters {
            queries_started: get(&self.queries_started),
            activity_queries: get(&self.activity_queries),
            rule_queries: get(&self.rule_queries),
            ddl_statements: get(&self.ddl_statements),
            bytes_scanned: get(&self.bytes_scanned),
            retries: get(&self.retries),
            queries_failed: get(&self.queries_failed),
        }
    }
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// What a statement is, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    Ddl,
    Activity,
    /// The events the rules want (one per account and window, when rules are enabled).
    Rules,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("Athena {call} for {what} failed after {attempts} attempt(s): {message}")]
    Call {
        call: &'static str,
        what: String,
        attempts: u32,
        message: String,
    },
    #[error(
        "Athena {call} for {what} was still throttled after {waited:?} ({attempts} attempts; \
         athena.throttle_patience is {patience:?}): {message}. Lower muster.concurrency, raise \
         the account's Athena quota of active queries, or raise athena.throttle_patience"
    )]
    Throttled {
        call: &'static str,
        what: String,
        attempts: u32,
        waited: Duration,
        patience: Duration,
        message: String,
    },
    #[error(
        "Athena query {id} for {what} ended {state}: {reason} (the query text is in the \
         workgroup's history under this id)"
    )]
    Failed {
        id: String,
        what: String,
        state: String,
        reason: String,
    },
    #[error(
        "Athena query {id} for {what} did not finish within {waited:?} (athena.query_timeout); \
         it was cancelled. Raise the timeout, or check the workgroup's queue"
    )]
    Timeout {
        id: String,
        what: String,
        waited: Duration,
    },
    #[error("Athena returned no {0}")]
    Missing(&'static str),
}

/// Whether a failed call is worth repeating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Throttled,
    Transient,
    Fatal,
}

/// The one place that decides which failed calls are retried.
fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Class {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Class::Transient
        }
        SdkError::ServiceError(service) => {
            let e = service.err();
            // Some throttles come with a generic code and only the message tells.
            if e.message().is_some_and(|m| m.contains("Rate exceeded")) {
                return Class::Throttled;
            }
            match e.code() {
                Some(
                    "TooManyRequestsException"
                    | "ThrottlingException"
                    | "Throttling"
                    | "RequestLimitExceeded"
                    | "SlowDown",
                ) => Class::Throttled,
                Some("InternalServerException" | "InternalFailure" | "ServiceUnavailable") => {
                    Class::Transient
                }
                // An HTTP 5xx without a code Athena documents: the service, not the request.
                _ if service.raw().status().is_server_error() => Class::Transient,
                _ => Class::Fatal,
            }
        }
        _ => Class::Fatal,
    }
}

/// What went wrong, in one line: the service's code and message when it answered, else the
/// transport's chain of causes (never the raw response, which is long and says no more).
fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!(
                "{} (HTTP {}): {}",
                e.code().unwrap_or("no error code"),
                service.raw().status().as_u16(),
                e.message().unwrap_or("no message")
            )
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

/// The error of a call that failed for good or in transit too often.
fn call_error<E>(
    name: &'static str,
    what: &str,
    tries: u32,
    err: &SdkError<E, HttpResponse>,
) -> QueryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    QueryError::Call {
        call: name,
        what: what.to_string(),
        attempts: tries,
        message: describe(err),
    }
}

/// A fresh idempotency token for `StartQueryExecution` (Athena wants 32 to 128 characters).
fn request_token() -> String {
    format!(
        "trailhound-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// A random duration in `[d/2, d]`: spreads retries and polls of concurrent hunts apart.
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState is keyed afresh, which is randomness enough for spreading sleeps.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    d.mul_f64(0.5 + (r % 10_000) as f64 / 20_000.0)
}

/// Runs statements in one workgroup.
#[derive(Clone)]
pub struct QueryRunner {
    client: aws_sdk_athena::Client,
    workgroup: String,
    output_location: Option<String>,
    policy: QueryPolicy,
    counters: Arc<Counters>,
}

/// A statement that succeeded.
#[derive(Clone, Debug)]
pub struct Finished {
    pub id: String,
    pub bytes_scanned: u64,
}

impl QueryRunner {
    pub(super) fn new(
        client: aws_sdk_athena::Client,
        workgroup: &str,
        output_location: &str,
        policy: QueryPolicy,
        counters: Arc<Counters>,
    ) -> Self {
        // This module decides what to retry (see `classify`); the SDK's own retries would
        // multiply the attempts and hide the throttling from the counters.
        let mut conf = client
            .config()
            .to_builder()
            .retry_config(aws_sdk_athena::config::retry::RetryConfig::disabled());
        // The SDK sets no limit on an answer's time by default: a connection that hangs would
        // hold the account's hunt (and a slot of the run) forever. A limit set by the caller
        // stands.
        let timeouts = client.config().timeout_config();
        if timeouts
            .and_then(|t| t.operation_attempt_timeout())
            .is_none()
        {
            let builder = timeouts.map(|t| t.to_builder()).unwrap_or_default();
            conf.set_timeout_config(Some(
                builder
                    .operation_attempt_timeout(CALL_ATTEMPT_TIMEOUT)
                    .build(),
            ));
        }
        let conf = conf.build();
        QueryRunner {
            client: aws_sdk_athena::Client::from_conf(conf),
            workgroup: workgroup.to_string(),
            output_location: (!output_location.is_empty()).then(|| output_location.to_string()),
            policy,
            counters,
        }
    }

    /// Calls `f` until it succeeds, fails for good, stays throttled beyond the patience, or
    /// fails in transit more often than the attempts allow.
    async fn call<T, E, F, Fut>(
        &self,
        name: &'static str,
        what: &str,
        mut f: F,
    ) -> Result<T, QueryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let mut tries = 0;
        let mut transient = 0;
        let mut pause = self.policy.backoff_first;
        loop {
            tries += 1;
            let err = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let class = classify(&err);
            let sleep = jitter(pause);
            match class {
                Class::Fatal => return Err(call_error(name, what, tries, &err)),
                Class::Transient => {
                    transient += 1;
                    if transient >= self.policy.attempts {
                        return Err(call_error(name, what, tries, &err));
                    }
                }
                Class::Throttled => {
                    // Gives up before a sleep that would end past the patience: the error then
                    // comes when it is due, not one backoff later.
                    let waited = started.elapsed();
                    if waited + sleep > self.policy.throttle_patience {
                        return Err(QueryError::Throttled {
                            call: name,
                            what: what.to_string(),
                            attempts: tries,
                            waited,
                            patience: self.policy.throttle_patience,
                            message: describe(&err),
                        });
                    }
                }
            }
            // Throttling is expected whenever more hunts run than the quota: not worth a
            // warning each time (the summary counts the retries).
            if class == Class::Throttled {
                tracing::debug!(call = name, what, tries, error = %describe(&err), "Athena throttled; waiting");
            } else {
                tracing::warn!(call = name, what, tries, error = %describe(&err), "retrying an Athena call");
            }
            bump(&self.counters.retries, 1);
            tokio::time::sleep(sleep).await;
            pause = (pause * 2).min(self.policy.backoff_max);
        }
    }

    /// Starts `sql` and waits until it has succeeded.
    pub async fn execute(
        &self,
        sql: &str,
        kind: StatementKind,
        what: &str,
    ) -> Result<Finished, QueryError> {
        let mut attempt = 0;
        // The first start: a query restarted after a retryable failure shares its deadline.
        let mut deadline = None;
        loop {
            attempt += 1;
            let id = self.start(sql, kind, what).await?;
            // The timeout counts from Athena's acceptance: time spent throttled at the start
            // has its own bound, the throttle patience.
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.policy.timeout);
            match self.wait(&id, what, deadline).await {
                Ok(done) => return Ok(done),
                Err((e, retryable)) => {
                    bump(&self.counters.queries_failed, 1);
                    if !retryable || attempt >= self.policy.attempts || Instant::now() >= deadline {
                        return Err(e);
                    }
                    tracing::warn!(what, error = %e, "Athena says the failure is retryable; starting the query again");
                    bump(&self.counters.retries, 1);
                    tokio::time::sleep(jitter(self.policy.backoff_first)).await;
                }
            }
        }
    }

    async fn start(
        &self,
        sql: &str,
        kind: StatementKind,
        what: &str,
    ) -> Result<String, QueryError> {
        // One token for every try of this start: a start whose answer was lost (a timeout)
        // and is sent again gets the query it already started, not a second one.
        let token = request_token();
        let out = self
            .call("StartQueryExecution", what, || {
                let mut req = self
                    .client
                    .start_query_execution()
                    .query_string(sql)
                    .client_request_token(&token)
                    .work_group(&self.workgroup);
                if let Some(location) = &self.output_location {
                    req = req.result_configuration(
                        ResultConfiguration::builder()
                            .output_location(location)
                            .build(),
                    );
                }
                req.send()
            })
            .await?;
        let id = out
            .query_execution_id()
            .ok_or(QueryError::Missing(
                "QueryExecutionId from StartQueryExecution",
            ))?
            .to_string();
        bump(&self.counters.queries_started, 1);
        match kind {
            StatementKind::Ddl => bump(&self.counters.ddl_statements, 1),
            StatementKind::Activity => bump(&self.counters.activity_queries, 1),
            StatementKind::Rules => bump(&self.counters.rule_queries, 1),
        }
        tracing::debug!(id, what, "Athena query started");
        Ok(id)
    }

    /// Polls until the query ends. The error says whether starting again may help.
    async fn wait(
        &self,
        id: &str,
        what: &str,
        deadline: Instant,
    ) -> Result<Finished, (QueryError, bool)> {
        let mut pause = self.policy.poll_first;
        let started = Instant::now();
        loop {
            let out = self
                .call("GetQueryExecution", what, || {
                    self.client
                        .get_query_execution()
                        .query_execution_id(id)
                        .send()
                })
                .await
                .map_err(|e| (e, false))?;
            let execution = out.query_execution().ok_or((
                QueryError::Missing("QueryExecution from GetQueryExecution"),
                false,
            ))?;
            let status = execution.status();
            let failed = |state: &str| {
                let reason = status
                    .and_then(|s| s.state_change_reason())
                    .or_else(|| {
                        status
                            .and_then(|s| s.athena_error())
                            .and_then(|e| e.error_message())
                    })
                    .unwrap_or("Athena gave no reason")
                    .to_string();
                let retryable = status
                    .and_then(|s| s.athena_error())
                    .is_some_and(|e| e.retryable());
                let e = QueryError::Failed {
                    id: id.to_string(),
                    what: what.to_string(),
                    state: state.to_string(),
                    reason,
                };
                (e, retryable)
            };
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => {
                    let bytes = execution
                        .statistics()
                        .and_then(|s| s.data_scanned_in_bytes())
                        .unwrap_or(0)
                        .max(0) as u64;
                    bump(&self.counters.bytes_scanned, bytes);
                    tracing::debug!(id, what, bytes, "Athena query succeeded");
                    return Ok(Finished {
                        id: id.to_string(),
                        bytes_scanned: bytes,
                    });
                }
                Some(QueryExecutionState::Failed) => return Err(failed("FAILED")),
                Some(QueryExecutionState::Cancelled) => {
                    let (e, _) = failed("CANCELLED");
                    return Err((e, false));
                }
                // QUEUED, RUNNING, or a state newer than this SDK: keep waiting.
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                // Best effort: a query nobody waits for should not keep costing.
                let _ = self
                    .client
                    .stop_query_execution()
                    .query_execution_id(id)
                    .send()
                    .await;
                let e = QueryError::Timeout {
                    id: id.to_string(),
                    what: what.to_string(),
                    waited: now - started,
                };
                return Err((e, false));
            }
            let sleep = jitter(pause).min(deadline - now);
            tokio::time::sleep(sleep).await;
            pause = (pause.mul_f64(1.5)).min(self.policy.poll_max);
        }
    }

    /// Reads a finished query's whole result, page by page. A hand-written token loop rather
    /// than the paginator, so that each page is retried on its own when throttled.
    pub async fn results(&self, id: &str, what: &str) -> Result<ResultTable, QueryError> {
        let mut table = ResultTable::default();
        let mut token: Option<String> = None;
        let mut first_page = true;
        loop {
            let out = self
                .call("GetQueryResults", what, || {
                    self.client
                        .get_query_results()
                        .query_execution_id(id)
                        .max_results(1000)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            if let Some(set) = out.result_set() {
                if first_page {
                    table.columns = set
                        .result_set_metadata()
                        .map(|m| {
                            m.column_info()
                                .iter()
                                .map(|c| c.name().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                }
                for (i, row) in set.rows().iter().enumerate() {
                    let values: Vec<Option<String>> = row
                        .data()
                        .iter()
                        .map(|d| d.var_char_value().map(str::to_string))
                        .collect();
                    // A SELECT's first row repeats the column names.
                    let is_header = first_page
                        && i == 0
                        && values.len() == table.columns.len()
                        && values
                            .iter()
                            .zip(&table.columns)
                            .all(|(v, c)| v.as_deref() == Some(c.as_str()));
                    if !is_header {
                        table.rows.push(values);
                    }
                }
            }
            first_page = false;
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(table),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
    }
}
