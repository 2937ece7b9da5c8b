//! Counts of what a state file holds, for the `baseline` command and the run summary.

use rusqlite::Connection;

use super::Fail;
use crate::cloudtrail::Timestamp;

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

pub(super) fn read_stats(conn: &mut Connection, now: Timestamp) -> Result<StoreStats, Fail> {
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
