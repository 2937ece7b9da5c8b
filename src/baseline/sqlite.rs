//! The embedded [`BaselineStore`]: one SQLite file holds the baseline, the per-account cursors
//! and the findings outbox of one machine.
//!
//! Several trailhound processes may share a file: WAL lets readers run beside the one writer,
//! every write takes the write lock up front (IMMEDIATE) and waits up to [`BUSY_TIMEOUT`] for
//! it instead of failing. Delivering takes turns across those processes (`deliverer.rs`), so
//! that two runs at once send each finding once. The schema and its migrations live in
//! `sqlite/schema.rs`, the statements of each half of the store in `baseline_rows.rs` and
//! `outbox.rs`.

mod baseline_rows;
mod deliverer;
mod outbox;
mod schema;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

pub use deliverer::WAIT as DELIVERY_WAIT;
pub use stats::{SinkStats, StoreStats};

use super::{BaselineStore, Commit, PairKey, PairState, PrincipalState, StoreError};
use crate::alert::Finding;
use crate::cloudtrail::{AccountId, Timestamp};
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
    /// The turn at delivering, shared with the other processes on the file (none in memory).
    deliverer: Option<Arc<deliverer::Deliverer>>,
}

impl SqliteStore {
    /// Opens the state file at `path`, creating it (and its folder) if missing, and brings its
    /// schema up to date. Blocks while another process holds the file locked (at most
    /// [`BUSY_TIMEOUT`]), so call it once at startup.
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
        let mode = switch_to_wal(&conn).map_err(failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some network file systems cannot do WAL; SQLite then keeps a rollback journal,
            // which is still correct, only readers wait for writers.
            tracing::warn!(path = %shown, mode, "the state store could not switch to WAL");
        }
        // In WAL, NORMAL loses at most the last transactions on power loss, never consistency;
        // a lost commit only makes its window be hunted again.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        let mut store = Self::finish(conn, &shown)?;
        store.deliverer = Some(Arc::new(deliverer::Deliverer::beside(path)));
        Ok(store)
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
            deliverer: None,
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
            stats::read_stats(conn, now)
        })
        .await
    }

    /// Runs `work` on the connection in tokio's blocking pool.
    ///
    /// A write may wait up to [`BUSY_TIMEOUT`] for another process, and tasks queue on the
    /// mutex; neither may hold a runtime worker that other accounts' hunts need. `what` names
    /// the operation in the error.
    async fn run<T, F>(&self, what: impl Display + Send, work: F) -> Result<T, StoreError>
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
            .map(outbox::StagedRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        let sinks = sinks.to_vec();
        self.run("staging findings", move |conn| {
            outbox::stage_rows(conn, &rows, &sinks, now)
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
        // The sink has taken these; a stop before the mark delivers them again.
        super::stop::point("delivering");
        let sink = sink.to_string();
        let ids = ids.to_vec();
        self.run(
            format!("marking findings delivered to {sink}"),
            move |conn| outbox::mark_delivered(conn, &sink, &ids, now),
        )
        .await
    }
}

/// Puts the file in WAL mode (a no-op once it is: the mode is stored in the file).
///
/// Switching needs an exclusive lock, and when two processes open a new file at once, SQLite
/// answers one of them BUSY at once instead of calling the busy handler (waiting could
/// deadlock, since both hold a shared lock). Retrying until [`BUSY_TIMEOUT`] gives the same
/// patience as every other lock.
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            done => return done,
        }
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
        self.run(format!("reading the cursor of {account}"), move |conn| {
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
        self.run(
            format!("recording the started window of {account}"),
            move |conn| {
                conn.execute(
                    "INSERT INTO cursors (account, watermark, pending_end) VALUES (?1, NULL, ?2)
                 ON CONFLICT (account) DO UPDATE SET pending_end = excluded.pending_end",
                    params![account, end.unix()],
                )?;
                Ok(())
            },
        )
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
        self.run(format!("reading the baseline of {account}"), move |conn| {
            baseline_rows::read_pairs(conn, &account, &keys, at)
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
        self.run(
            format!("reading the principals of {account}"),
            move |conn| baseline_rows::read_principals(conn, &account, &keys),
        )
        .await
    }

    async fn rule_states(
        &self,
        account: &AccountId,
        rules: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let account = account.as_str().to_string();
        let rules = rules.to_vec();
        self.run(
            format!("reading the rules' state of {account}"),
            move |conn| baseline_rows::read_rule_states(conn, &account, &rules),
        )
        .await
    }

    async fn account_since(&self, account: &AccountId) -> Result<Option<Timestamp>, StoreError> {
        let account = account.as_str().to_string();
        self.run(format!("reading the history of {account}"), move |conn| {
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
        self.run(format!("committing the window of {account}"), move |conn| {
            baseline_rows::apply_commit(conn, &account, &commit)
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
        let read = || {
            let sink = sink.to_string();
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.run(format!("reading the outbox of sink {sink}"), move |conn| {
                outbox::read_pending(conn, &sink, limit)
            })
        };
        let found = read().await?;
        let Some(turn) = &self.deliverer else {
            return Ok(found);
        };
        // Nothing left to send: the turn goes back, and only then (an outbox with nothing
        // pending, the common case, takes no lock at all).
        if found.is_empty() {
            turn.give_back();
            return Ok(found);
        }
        if turn.is_held() {
            return Ok(found);
        }
        let waiting = Arc::clone(turn);
        tokio::task::spawn_blocking(move || waiting.take())
            .await
            .map_err(|e| StoreError::Query(format!("waiting to deliver stopped: {e}")))??;
        // Another process may have delivered them while this one waited.
        let found = read().await?;
        if found.is_empty() {
            turn.give_back();
        }
        Ok(found)
    }

    async fn mark_delivered(&self, sink: &str, ids: &[String]) -> Result<(), StoreError> {
        self.mark_delivered_at(sink, ids, Timestamp::now()).await
    }
}
