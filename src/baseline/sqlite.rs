//! The embedded [`BaselineStore`]: one SQLite file holds the baseline, the per-account cursors
//! and the findings outbox of one machine.
//!
//! Several trailhound processes may share a file: WAL lets readers run beside the one writer,
//! every write takes the write lock up front (IMMEDIATE) and waits up to [`BUSY_TIMEOUT`] for
//! it instead of failing. The schema and its migrations live in [`schema`].

mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{BaselineStore, Commit, PairKey, PairState, PrincipalState, StoreError};
use crate::alert::Finding;
use crate::cloudtrail::{AccountId, IdentityType, Timestamp};
use crate::window::Cursor;

/// How long a writer waits for another process to finish its transaction. A commit of a large
/// window takes well under a second, so this only runs out when something is stuck.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite [`BaselineStore`]. Cheap to clone; clones share one connection.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    // rusqlite connections are not `Sync`; the mutex makes one connection serve all tasks, and
    // SQLite serialises writers anyway.
    conn: Arc<Mutex<Connection>>,
}

/// What the state file holds, for the `baseline` command and the run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Accounts with a cursor or any baseline.
    pub accounts: u64,
    pub principals: u64,
    /// Stored pairs, expired or not.
    pub pairs: u64,
    /// Of `pairs`, those already expired (unknown to the hunt; removed by `purge_expired`).
    pub pairs_expired: u64,
    pub findings: u64,
    /// Findings still owed to at least one sink.
    pub findings_pending: u64,
    /// Findings every sink they were staged for has taken.
    pub findings_delivered: u64,
    /// Per sink, by name.
    pub sinks: Vec<SinkStats>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkStats {
    pub sink: String,
    pub pending: u64,
    pub delivered: u64,
}

impl SqliteStore {
    /// Opens the state file at `path`, creating it (and its folder) if missing, and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| StoreError::Open {
                path: shown.clone(),
                reason: format!("its folder cannot be created: {e}"),
            })?;
        }
        // No SQLITE_OPEN_URI: a path is a path, even one that starts with `file:`.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| schema::open_error(&shown, e))?;
        let failed = |e| schema::open_error(&shown, e);
        // Before anything touches the file, so that even switching to WAL waits for others.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some network file systems cannot do WAL; SQLite then keeps a rollback journal,
            // which is still correct, only readers wait for writers.
            tracing::warn!(path = %shown, mode, "the state store could not switch to WAL");
        }
        // In WAL, NORMAL loses at most the last transactions on power loss, never consistency;
        // a lost commit only makes its window be hunted again.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        Self::finish(conn, &shown)
    }

    /// A private store that lives as long as the value, for tests and dry runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let shown = ":memory:";
        let conn = Connection::open_in_memory().map_err(|e| schema::open_error(shown, e))?;
        Self::finish(conn, shown)
    }

    fn finish(mut conn: Connection, shown: &str) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| schema::open_error(shown, e))?;
        schema::migrate(&mut conn, shown)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Deletes the pairs that have expired at `at` (those `known_pairs` would no longer
    /// return). Returns how many were deleted.
    pub async fn purge_expired(&self, at: Timestamp) -> Result<usize, StoreError> {
        self.run("deleting expired pairs", move |conn| {
            Ok(conn.execute("DELETE FROM pairs WHERE expires <= ?1", [at.unix()])?)
        })
        .await
    }

    /// Counts what the store holds; pairs count as expired against the current time.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let now = Timestamp::now();
        self.run("counting the state store", move |conn| {
            read_stats(conn, now)
        })
        .await
    }

    /// Runs `work` on the connection in tokio's blocking pool.
    ///
    /// A write may wait up to [`BUSY_TIMEOUT`] for another process, and tasks queue on the
    /// mutex; neither may hold a runtime worker that other accounts' hunts need. `what` names
    /// the operation in the error.
    async fn run<T, F>(&self, what: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let joined = tokio::task::spawn_blocking(move || {
            // A panic while the lock was held unwound through the open transaction, whose drop
            // rolled it back: the connection is consistent, so poisoning is not a reason to
            // stop using it.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut conn)
        })
        .await;
        match joined {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Fail::Sql(e))) => Err(StoreError::Query(format!("{what}: {e}"))),
            Ok(Err(Fail::Store(e))) => Err(e),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Query(format!("{what}: the task stopped: {e}"))),
        }
    }

    /// [`BaselineStore::stage`] with the staging time given, so tests can order the outbox.
    async fn stage_at(
        &self,
        findings: &[Finding],
        sinks: &[String],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let rows = findings
            .iter()
            .map(StagedRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        let sinks = sinks.to_vec();
        self.run("staging findings", move |conn| {
            stage_rows(conn, &rows, &sinks, now)
        })
        .await
    }

    /// [`BaselineStore::mark_delivered`] with the delivery time given.
    async fn mark_delivered_at(
        &self,
        sink: &str,
        ids: &[String],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sink = sink.to_string();
        let ids = ids.to_vec();
        self.run("marking findings delivered", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                // Only the first delivery counts: a re-send after a lost acknowledgement keeps
                // the original time.
                let mut mark = tx.prepare_cached(
                    "UPDATE deliveries SET delivered_at = ?3
                     WHERE finding_id = ?1 AND sink = ?2 AND delivered_at IS NULL",
                )?;
                for id in &ids {
                    mark.execute(params![id, sink, now.unix()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// A failure inside a store operation: SQLite's, to be wrapped with what was being done, or
/// one already explained.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

#[async_trait]
impl BaselineStore for SqliteStore {
    async fn cursor(&self, account: &AccountId) -> Result<Cursor, StoreError> {
        let account = account.as_str().to_string();
        self.run("reading the cursor", move |conn| {
            let row: Option<(Option<i64>, Option<i64>)> = conn
                .query_row(
                    "SELECT watermark, pending_end FROM cursors WHERE account = ?1",
                    [&account],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(
                row.map_or_else(Cursor::default, |(watermark, pending_end)| Cursor {
                    watermark: watermark.map(Timestamp::from_unix),
                    pending_end: pending_end.map(Timestamp::from_unix),
                }),
            )
        })
        .await
    }

    async fn begin_window(&self, account: &AccountId, end: Timestamp) -> Result<(), StoreError> {
        let account = account.as_str().to_string();
        self.run("recording the started window", move |conn| {
            conn.execute(
                "INSERT INTO cursors (account, watermark, pending_end) VALUES (?1, NULL, ?2)
                 ON CONFLICT (account) DO UPDATE SET pending_end = excluded.pending_end",
                params![account, end.unix()],
            )?;
            Ok(())
        })
        .await
    }

    async fn known_pairs(
        &self,
        account: &AccountId,
        keys: &[PairKey],
        at: Timestamp,
    ) -> Result<HashMap<PairKey, PairState>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let account = account.as_str().to_string();
        let keys = keys.to_vec();
        self.run("reading the baseline", move |conn| {
            read_pairs(conn, &account, &keys, at)
        })
        .await
    }

    async fn known_principals(
        &self,
        account: &AccountId,
        keys: &[String],
    ) -> Result<HashMap<String, PrincipalState>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let account = account.as_str().to_string();
        let keys = keys.to_vec();
        self.run("reading principals", move |conn| {
            read_principals(conn, &account, &keys)
        })
        .await
    }

    async fn account_since(&self, account: &AccountId) -> Result<Option<Timestamp>, StoreError> {
        let account = account.as_str().to_string();
        self.run("reading the account's history", move |conn| {
            let since: Option<i64> = conn.query_row(
                "SELECT min(first_seen) FROM principals WHERE account = ?1",
                [&account],
                |r| r.get(0),
            )?;
            Ok(since.map(Timestamp::from_unix))
        })
        .await
    }

    async fn commit(&self, account: &AccountId, commit: &Commit) -> Result<(), StoreError> {
        let account = account.as_str().to_string();
        let commit = commit.clone();
        self.run("committing the window", move |conn| {
            apply_commit(conn, &account, &commit)
        })
        .await
    }

    async fn stage(&self, findings: &[Finding], sinks: &[String]) -> Result<usize, StoreError> {
        self.stage_at(findings, sinks, Timestamp::now()).await
    }

    async fn pending(&self, sink: &str, limit: usize) -> Result<Vec<Finding>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sink = sink.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("reading the outbox", move |conn| {
            read_pending(conn, &sink, limit)
        })
        .await
    }

    async fn mark_delivered(&self, sink: &str, ids: &[String]) -> Result<(), StoreError> {
        self.mark_delivered_at(sink, ids, Timestamp::now()).await
    }
}

/// SQLite integers are signed; counts beyond `i64::MAX` cannot happen in practice and saturate.
fn count_to_sql(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn read_pairs(
    conn: &mut Connection,
    account: &str,
    keys: &[PairKey],
    at: Timestamp,
) -> Result<HashMap<PairKey, PairState>, Fail> {
    // One read transaction: every key is answered from the same snapshot, and the cached
    // statement makes each key one bound primary-key lookup, so thousands of keys take
    // milliseconds without building SQL from values.
    let tx = conn.transaction()?;
    let mut found = HashMap::new();
    {
        let mut lookup = tx.prepare_cached(
            "SELECT first_seen, last_seen, count, expires FROM pairs
             WHERE account = ?1 AND principal = ?2 AND action = ?3 AND outcome = ?4
               AND expires > ?5",
        )?;
        for key in keys {
            let row: Option<(i64, i64, i64, i64)> = lookup
                .query_row(
                    params![account, key.principal, key.action, key.outcome, at.unix()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((first_seen, last_seen, count, expires)) = row else {
                continue;
            };
            let count = u64::try_from(count).map_err(|_| {
                StoreError::Query(format!(
                    "the stored pair ({}, {}, {}) of {account} has a negative count {count}; \
                     the state file was changed by something other than trailhound",
                    key.principal, key.action, key.outcome
                ))
            })?;
            found.insert(
                key.clone(),
                PairState {
                    first_seen: Timestamp::from_unix(first_seen),
                    last_seen: Timestamp::from_unix(last_seen),
                    count,
                    expires: Timestamp::from_unix(expires),
                },
            );
        }
    }
    tx.commit()?;
    Ok(found)
}

fn read_principals(
    conn: &mut Connection,
    account: &str,
    keys: &[String],
) -> Result<HashMap<String, PrincipalState>, Fail> {
    // Same shape as `read_pairs`: one snapshot, one bound lookup per key.
    let tx = conn.transaction()?;
    let mut found = HashMap::new();
    {
        let mut lookup = tx.prepare_cached(
            "SELECT kind, first_seen FROM principals WHERE account = ?1 AND principal = ?2",
        )?;
        for key in keys {
            let row: Option<(String, i64)> = lookup
                .query_row(params![account, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((kind, first_seen)) = row else {
                continue;
            };
            let kind = IdentityType::parse(&kind).ok_or_else(|| {
                StoreError::Query(format!(
                    "the stored principal {key} of {account} has an unknown kind `{kind}`; \
                     the state file was changed by something other than trailhound"
                ))
            })?;
            found.insert(
                key.clone(),
                PrincipalState {
                    first_seen: Timestamp::from_unix(first_seen),
                    kind,
                },
            );
        }
    }
    tx.commit()?;
    Ok(found)
}

fn apply_commit(conn: &mut Connection, account: &str, commit: &Commit) -> Result<(), Fail> {
    // IMMEDIATE takes the write lock before the first statement. A deferred transaction would
    // take it at the first write and, if another process wrote in between, fail at once with
    // SQLITE_BUSY instead of waiting out the busy timeout.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        // The caller decides the new state (count, TTL); only first_seen is history that a
        // refresh or a redone window must not rewrite.
        let mut upsert_pair = tx.prepare_cached(
            "INSERT INTO pairs
                 (account, principal, action, outcome, first_seen, last_seen, count, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (account, principal, action, outcome) DO UPDATE SET
                 first_seen = min(first_seen, excluded.first_seen),
                 last_seen = excluded.last_seen,
                 count = excluded.count,
                 expires = excluded.expires",
        )?;
        for write in &commit.pairs {
            let (key, state) = (&write.key, &write.state);
            upsert_pair.execute(params![
                account,
                key.principal,
                key.action,
                key.outcome,
                state.first_seen.unix(),
                state.last_seen.unix(),
                count_to_sql(state.count),
                state.expires.unix(),
            ])?;
        }
        let mut add_principal = tx.prepare_cached(
            "INSERT INTO principals (account, principal, kind, first_seen)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account, principal) DO UPDATE SET
                 first_seen = min(first_seen, excluded.first_seen)",
        )?;
        for (principal, state) in &commit.principals {
            add_principal.execute(params![
                account,
                principal,
                state.kind.name(),
                state.first_seen.unix()
            ])?;
        }
        if let Some(watermark) = commit.watermark {
            // In an upsert every SET expression sees the old row, so the new watermark is
            // spelled out twice. A late commit of an older window must not move it back, and
            // a pending window it covers is finished.
            tx.execute(
                "INSERT INTO cursors (account, watermark, pending_end) VALUES (?1, ?2, NULL)
                 ON CONFLICT (account) DO UPDATE SET
                     watermark = max(coalesce(watermark, excluded.watermark), excluded.watermark),
                     pending_end = CASE
                         WHEN pending_end <= max(coalesce(watermark, excluded.watermark),
                                                 excluded.watermark)
                         THEN NULL
                         ELSE pending_end
                     END",
                params![account, watermark.unix()],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A finding as the outbox stores it, built before the blocking work so that only owned data
/// crosses into the blocking pool.
struct StagedRow {
    id: String,
    kind: &'static str,
    account: String,
    level: &'static str,
    score: i64,
    first_seen: i64,
    json: String,
}

impl StagedRow {
    fn of(finding: &Finding) -> Result<Self, StoreError> {
        let json = serde_json::to_string(finding).map_err(|e| {
            StoreError::Query(format!(
                "finding {} cannot be written as JSON: {e}",
                finding.id
            ))
        })?;
        Ok(StagedRow {
            id: finding.id.clone(),
            kind: finding.kind.name(),
            account: finding.account.as_str().to_string(),
            level: finding.severity.level.name(),
            score: i64::from(finding.severity.score),
            first_seen: finding.first_seen.unix(),
            json,
        })
    }
}

fn stage_rows(
    conn: &mut Connection,
    rows: &[StagedRow],
    sinks: &[String],
    now: Timestamp,
) -> Result<usize, Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut new = 0;
    {
        // OR IGNORE on both: a finding staged again (a redone window) keeps its first staging
        // and, per sink, its delivery state.
        let mut add_finding = tx.prepare_cached(
            "INSERT OR IGNORE INTO findings
                 (id, kind, account, level, score, first_seen, json, staged_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut owe = tx.prepare_cached(
            "INSERT OR IGNORE INTO deliveries (finding_id, sink, delivered_at)
             VALUES (?1, ?2, NULL)",
        )?;
        for row in rows {
            new += add_finding.execute(params![
                row.id,
                row.kind,
                row.account,
                row.level,
                row.score,
                row.first_seen,
                row.json,
                now.unix()
            ])?;
            for sink in sinks {
                owe.execute(params![row.id, sink])?;
            }
        }
    }
    tx.commit()?;
    Ok(new)
}

fn read_pending(conn: &mut Connection, sink: &str, limit: i64) -> Result<Vec<Finding>, Fail> {
    let mut query = conn.prepare_cached(
        "SELECT f.id, f.json
         FROM deliveries AS d JOIN findings AS f ON f.id = d.finding_id
         WHERE d.sink = ?1 AND d.delivered_at IS NULL
         ORDER BY f.staged_at, f.id
         LIMIT ?2",
    )?;
    let rows = query.query_map(params![sink, limit], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row?;
        let finding = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
            id: id.clone(),
            reason: e.to_string(),
        })?;
        out.push(finding);
    }
    Ok(out)
}

fn read_stats(conn: &mut Connection, now: Timestamp) -> Result<StoreStats, Fail> {
    // One snapshot, so the numbers add up with each other.
    let tx = conn.transaction()?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut stats = tx.query_row(
        "SELECT
             (SELECT count(*) FROM (SELECT account FROM cursors
                                    UNION SELECT account FROM principals
                                    UNION SELECT account FROM pairs)),
             (SELECT count(*) FROM principals),
             (SELECT count(*) FROM pairs),
             (SELECT count(*) FROM pairs WHERE expires <= ?1),
             (SELECT count(*) FROM findings),
             (SELECT count(DISTINCT finding_id) FROM deliveries WHERE delivered_at IS NULL),
             (SELECT count(*) FROM findings AS f
              WHERE EXISTS (SELECT 1 FROM deliveries AS d WHERE d.finding_id = f.id)
                AND NOT EXISTS (SELECT 1 FROM deliveries AS d
                                WHERE d.finding_id = f.id AND d.delivered_at IS NULL))",
        [now.unix()],
        |r| {
            Ok(StoreStats {
                accounts: count(r.get(0)?),
                principals: count(r.get(1)?),
                pairs: count(r.get(2)?),
                pairs_expired: count(r.get(3)?),
                findings: count(r.get(4)?),
                findings_pending: count(r.get(5)?),
                findings_delivered: count(r.get(6)?),
                sinks: Vec::new(),
            })
        },
    )?;
    {
        let mut per_sink = tx.prepare(
            "SELECT sink,
                    count(*) FILTER (WHERE delivered_at IS NULL),
                    count(*) FILTER (WHERE delivered_at IS NOT NULL)
             FROM deliveries GROUP BY sink ORDER BY sink",
        )?;
        let rows = per_sink.query_map([], |r| {
            Ok(SinkStats {
                sink: r.get(0)?,
                pending: count(r.get(1)?),
                delivered: count(r.get(2)?),
            })
        })?;
        for row in rows {
            stats.sinks.push(row?);
        }
    }
    tx.commit()?;
    Ok(stats)
}
