//! The baseline half of the store: pairs, principals and the watermark a commit advances.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::Fail;
use crate::baseline::{Commit, PairKey, PairState, PrincipalState, StoreError};
use crate::cloudtrail::{IdentityType, Timestamp};

/// SQLite integers are signed; counts beyond `i64::MAX` cannot happen in practice and saturate.
fn count_to_sql(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub(super) fn read_pairs(
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
            "SELECT first_seen, last_seen, count, expires, days FROM pairs
             WHERE account = ?1 AND principal = ?2 AND action = ?3 AND outcome = ?4
               AND expires > ?5",
        )?;
        for key in keys {
            let row: Option<(i64, i64, i64, i64, i64)> = lookup
                .query_row(
                    params![account, key.principal, key.action, key.outcome, at.unix()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((first_seen, last_seen, count, expires, days)) = row else {
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
                    days: u64::try_from(days).unwrap_or(1),
                    expires: Timestamp::from_unix(expires),
                },
            );
        }
    }
    tx.commit()?;
    Ok(found)
}

pub(super) fn read_principals(
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

pub(super) fn read_rule_states(
    conn: &mut Connection,
    account: &str,
    rules: &[String],
) -> Result<HashMap<String, String>, Fail> {
    let tx = conn.transaction()?;
    let mut found = HashMap::new();
    {
        let mut lookup =
            tx.prepare_cached("SELECT state FROM rule_state WHERE account = ?1 AND rule = ?2")?;
        for rule in rules {
            let state: Option<String> = lookup
                .query_row(params![account, rule], |r| r.get(0))
                .optional()?;
            if let Some(state) = state {
                found.insert(rule.clone(), state);
            }
        }
    }
    tx.commit()?;
    Ok(found)
}

pub(super) fn apply_commit(
    conn: &mut Connection,
    account: &str,
    commit: &Commit,
) -> Result<(), Fail> {
    // IMMEDIATE takes the write lock before the first statement. A deferred transaction would
    // take it at the first write and, if another process wrote in between, fail at once with
    // SQLITE_BUSY instead of waiting out the busy timeout.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        // The caller decides the new state (count, TTL); only first_seen is history that a
        // refresh or a redone window must not rewrite.
        let mut upsert_pair = tx.prepare_cached(
            "INSERT INTO pairs
                 (account, principal, action, outcome, first_seen, last_seen, count, expires,
                  days)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (account, principal, action, outcome) DO UPDATE SET
                 first_seen = min(first_seen, excluded.first_seen),
                 last_seen = excluded.last_seen,
                 count = excluded.count,
                 expires = excluded.expires,
                 days = excluded.days",
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
                count_to_sql(state.days),
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
        let mut put_state = tx.prepare_cached(
            "INSERT INTO rule_state (account, rule, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, rule) DO UPDATE SET state = excluded.state",
        )?;
        for (rule, state) in &commit.rule_states {
            put_state.execute(params![account, rule, state])?;
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
    if !commit.pairs.is_empty() || !commit.principals.is_empty() {
        // Everything written, nothing committed: a stop here must roll it all back.
        crate::baseline::stop::point("commit");
    }
    tx.commit()?;
    Ok(())
}
