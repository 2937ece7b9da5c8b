//! The outbox half of the store: findings staged before any sink is told, and per sink
//! whether it has taken them.

use rusqlite::{params, Connection, TransactionBehavior};

use super::Fail;
use crate::alert::Finding;
use crate::baseline::StoreError;
use crate::cloudtrail::Timestamp;

/// A finding as the outbox stores it, built before the blocking work so that only owned data
/// crosses into the blocking pool.
pub(super) struct StagedRow {
    id: String,
    kind: &'static str,
    account: String,
    level: &'static str,
    score: i64,
    first_seen: i64,
    json: String,
}

impl StagedRow {
    pub(super) fn of(finding: &Finding) -> Result<Self, StoreError> {
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

pub(super) fn stage_rows(
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

pub(super) fn read_pending(
    conn: &mut Connection,
    sink: &str,
    limit: i64,
) -> Result<Vec<Finding>, Fail> {
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

pub(super) fn mark_delivered(
    conn: &mut Connection,
    sink: &str,
    ids: &[String],
    now: Timestamp,
) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        // Only the first delivery counts: a re-send after a lost acknowledgement keeps
        // the original time.
        let mut mark = tx.prepare_cached(
            "UPDATE deliveries SET delivered_at = ?3
             WHERE finding_id = ?1 AND sink = ?2 AND delivered_at IS NULL",
        )?;
        for id in ids {
            mark.execute(params![id, sink, now.unix()])?;
        }
    }
    tx.commit()?;
    Ok(())
}
