//! The SQLite schema of a trailhound state file and how a file reaches it: an append-only list
//! of migrations keyed by `PRAGMA user_version`, and the checks that refuse files that are not
//! ours rather than filling them with our tables.

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::baseline::StoreError;

/// Marks a file as trailhound state (the bytes "TrHd"), so that another application's SQLite
/// file is told apart from ours even before any table is read.
pub(super) const APPLICATION_ID: i32 = 0x5472_4864;

/// Step `i` takes a file from schema version `i` to `i + 1`, in one transaction.
///
/// Append only: a released step is never edited, because files in the field have already run
/// it; a change of mind is a new step.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The newest schema version this build knows.
pub(super) const LATEST: i64 = MIGRATIONS.len() as i64;

// Times are whole seconds since the Unix epoch (`Timestamp::unix`). Tables are STRICT so that a
// value of the wrong type is refused on write instead of surfacing later as a decoding error.
const V1: &str = "
PRAGMA application_id = 1416775780;

-- The baseline: what each principal has done, per outcome class. A row whose `expires` has
-- passed is unknown to readers even before `purge_expired` deletes it.
CREATE TABLE pairs (
    account    TEXT    NOT NULL,
    principal  TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    PRIMARY KEY (account, principal, action, outcome)
) STRICT, WITHOUT ROWID;

-- Lets purge_expired find expired rows without reading the whole baseline.
CREATE INDEX pairs_by_expiry ON pairs (expires);

-- Every principal ever seen in an account; `kind` is the IdentityType name.
CREATE TABLE principals (
    account    TEXT    NOT NULL,
    principal  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (account, principal)
) STRICT, WITHOUT ROWID;

-- Where each account stands in delivery time (see window::Cursor).
CREATE TABLE cursors (
    account     TEXT PRIMARY KEY NOT NULL,
    watermark   INTEGER,
    pending_end INTEGER
) STRICT, WITHOUT ROWID;

-- The outbox. The finding itself is `json`; the other columns are copies for queries by hand
-- (`sqlite3 state.db \"select level, count(*) from findings group by 1\"`).
CREATE TABLE findings (
    id         TEXT    PRIMARY KEY NOT NULL,
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    level      TEXT    NOT NULL,
    score      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    json       TEXT    NOT NULL,
    staged_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX findings_by_staging ON findings (staged_at, id);

-- One row per finding and sink it is owed to; `delivered_at` is NULL until the sink took it.
CREATE TABLE deliveries (
    finding_id   TEXT    NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    sink         TEXT    NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (finding_id, sink)
) STRICT, WITHOUT ROWID;

-- Keeps `pending` proportional to what is owed, not to everything ever delivered.
CREATE INDEX deliveries_owed ON deliveries (sink, finding_id) WHERE delivered_at IS NULL;
";

// Rules' state between windows (detect::rule_state), one JSON document per account and rule.
const V2: &str = "
CREATE TABLE rule_state (
    account TEXT NOT NULL,
    rule    TEXT NOT NULL,
    state   TEXT NOT NULL,
    PRIMARY KEY (account, rule)
) STRICT, WITHOUT ROWID;
";

// Days a pair was active on (baseline::PairState::days); rows from before count as one.
const V3: &str = "
ALTER TABLE pairs ADD COLUMN days INTEGER NOT NULL DEFAULT 1;
";

/// Brings the schema of `conn` up to [`LATEST`].
///
/// Safe when several processes open the same new file at once: each step re-reads the version
/// inside an IMMEDIATE transaction, so exactly one process applies it and the others find it
/// done. A file that is already current is only read, so opening never waits on a writer.
pub(super) fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let failed = |e: rusqlite::Error| open_error(path, e);
    let current = check_version(conn, path).map_err(|e| e.into_store(path))?;
    if current == LATEST {
        return Ok(());
    }
    for (step, sql) in MIGRATIONS.iter().enumerate() {
        let target = step as i64 + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let current = check_version(&tx, path).map_err(|e| e.into_store(path))?;
        if current >= target {
            continue;
        }
        if current == 0 {
            let objects: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(failed)?;
            if objects > 0 {
                return Err(StoreError::Open {
                    path: path.to_string(),
                    reason: "it is a SQLite database with tables of something else, not a \
                             trailhound state file; give trailhound a file of its own"
                        .to_string(),
                });
            }
        }
        tx.execute_batch(sql).map_err(|e| StoreError::Open {
            path: path.to_string(),
            reason: format!("schema step {target} failed: {e}"),
        })?;
        tx.pragma_update(None, "user_version", target)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::debug!(path, version = target, "state store schema migrated");
    }
    Ok(())
}

/// Why a version check stopped the open.
enum VersionError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl VersionError {
    fn into_store(self, path: &str) -> StoreError {
        match self {
            VersionError::Sql(e) => open_error(path, e),
            VersionError::Store(e) => e,
        }
    }
}

/// The file's schema version, after making sure the file is ours and not from the future.
fn check_version(conn: &Connection, path: &str) -> Result<i64, VersionError> {
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(VersionError::Sql)?;
    if app != 0 && app != APPLICATION_ID {
        return Err(VersionError::Store(StoreError::Open {
            path: path.to_string(),
            reason: format!(
                "it is the SQLite database of another application (application_id {app:#x}), \
                 not a trailhound state file"
            ),
        }));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(VersionError::Sql)?;
    if version > LATEST {
        return Err(VersionError::Store(StoreError::NewerSchema {
            path: path.to_string(),
            found: version,
            known: LATEST,
        }));
    }
    Ok(version)
}

/// Turns a failure while opening into a reason a person can act on.
pub(super) fn open_error(path: &str, e: rusqlite::Error) -> StoreError {
    let reason = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => format!(
            "it is not a SQLite database ({e}); give the path of a trailhound state file, or \
             a path that does not exist yet"
        ),
        Some(ErrorCode::CannotOpen) => {
            format!("{e}; is the path a folder, or is its folder not writable?")
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            format!("{e}; another process kept it locked past the busy timeout")
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            format!("{e}; trailhound needs to write its state file")
        }
        _ => e.to_string(),
    };
    StoreError::Open {
        path: path.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_id_in_the_schema_matches_the_constant() {
        // The migration cannot interpolate the constant (steps are fixed text), so this keeps
        // the two from drifting apart.
        assert!(V1.contains(&format!("application_id = {APPLICATION_ID};")));
    }
}
