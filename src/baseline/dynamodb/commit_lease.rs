//! One committer at a time per partition, so that a commit can write its pairs and
//! principals in `BatchWriteItem` calls, which carry no condition, and still keep the earliest
//! first-seen against every other writer.
//!
//! The lease lives on the partition's cursor item (`A#<account>`, `C`) as a holder token and
//! an expiry. It is taken by a conditional update (free, or run out) and read back, renewed
//! between write rounds while held, and given back with the commit's `since` in one update.
//! Under it, the commit reads the first-seen of the items it is about to replace
//! (consistently) and writes the earlier one: the read and the write are not one operation,
//! but no other commit of the partition writes between them. A process that dies holding the
//! lease frees it a lease later. A commit that finds its lease taken over (it renewed too
//! late) does its writes again under a new lease, reading what the other wrote, so the
//! earliest first-seen of both stands.
//!
//! Why a lease rather than one conditional update per item: a first hunt writes hundreds of
//! items per account, each its own call, while a batch takes 25 for the same write units.
//! The calls cost DynamoDB latency per account and the local emulator most of its CPU (see
//! docs/PERFORMANCE.md). The lease costs two updates, a consistent read of the cursor, and
//! one consistent read unit per written item.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::calls::{Conditional, UpdateSpec};
use super::keys::{key, n, opt_i64, s, Item, COMMIT_OWNER, COMMIT_UNTIL, CURSOR_SK, SINCE};
use super::DynamoStore;
use crate::baseline::StoreError;
use crate::cloudtrail::Timestamp;

/// How long a commit lease lasts without renewal. Far longer than a round of writes takes
/// (one round is at most `ROUND` items, a few batch calls), so a live holder renews in time.
pub const COMMIT_LEASE: Duration = Duration::from_secs(60);
/// Renewed once this much of it has gone by.
const RENEW_AFTER: Duration = Duration::from_secs(15);
/// How long a commit waits for another process's commit of the same partition. A live holder
/// finishes in seconds; a dead one's lease runs out after [`COMMIT_LEASE`].
const COMMIT_WAIT: Duration = Duration::from_secs(10 * 60);

/// A held commit lease on one partition.
#[derive(Debug)]
pub(super) struct CommitLease {
    cursor: Item,
    holder: String,
    renewed: tokio::time::Instant,
    /// The partition's `since` when the lease was taken: under the lease, nobody else moves it.
    since: Option<i64>,
}

impl CommitLease {
    fn expiry(now: Timestamp) -> i64 {
        now.unix() + COMMIT_LEASE.as_secs() as i64
    }
}

impl DynamoStore {
    /// Waits until no other process holds the partition's commit lease, and takes it.
    pub(super) async fn take_commit_lease(
        &self,
        what: &str,
        pk: &str,
    ) -> Result<CommitLease, StoreError> {
        let holder = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let cursor = key(pk.to_string(), CURSOR_SK);
        let started = tokio::time::Instant::now();
        loop {
            let now = Timestamp::now();
            let spec = UpdateSpec {
                key: cursor.clone(),
                update: "SET #commit_owner = :me, #commit_until = :until".to_string(),
                condition: Some(
                    "attribute_not_exists(#commit_owner) OR #commit_until < :now".to_string(),
                ),
                names: &[COMMIT_OWNER, COMMIT_UNTIL],
                values: HashMap::from([
                    (":me".to_string(), s(holder.clone())),
                    (":until".to_string(), n(CommitLease::expiry(now))),
                    (":now".to_string(), n(now.unix())),
                ]),
                returning: false,
            };
            if let Conditional::Applied(_) = self.update(what, spec).await? {
                // Read back, consistently: DynamoDB decides the condition on the item itself,
                // but the local emulator does not apply a conditional update atomically
                // against a concurrent one, and two commits racing for a lease there can both
                // see theirs applied. The last writer is the holder; the other waits.
                let item = self
                    .get_item(what, cursor.clone(), &[COMMIT_OWNER, SINCE], true)
                    .await?;
                if let Some(item) = item.filter(|item| {
                    matches!(item.get(COMMIT_OWNER), Some(AttributeValue::S(o)) if *o == holder)
                }) {
                    return Ok(CommitLease {
                        cursor,
                        holder,
                        renewed: tokio::time::Instant::now(),
                        since: opt_i64(&item, SINCE)?,
                    });
                }
            }
            if started.elapsed() >= COMMIT_WAIT {
                return Err(StoreError::Query(format!(
                    "{what}: another trailhound process has been committing this partition \
                     for over {} minutes (table {}); the window is redone by the next run",
                    COMMIT_WAIT.as_secs() / 60,
                    self.table
                )));
            }
            // A live holder is done in well under a second: poll often, jittered so that
            // waiters do not knock together.
            tokio::time::sleep(Duration::from_millis(100 + fastrand::u64(0..300))).await;
        }
    }

    /// Renews the lease when a quarter of it has gone by; `false` when another process has
    /// taken it over, so that nothing more is written without it.
    pub(super) async fn keep_commit_lease(
        &self,
        what: &str,
        lease: &mut CommitLease,
    ) -> Result<bool, StoreError> {
        if lease.renewed.elapsed() < RENEW_AFTER {
            return Ok(true);
        }
        let spec = UpdateSpec {
            key: lease.cursor.clone(),
            update: "SET #commit_until = :until".to_string(),
            condition: Some("#commit_owner = :me".to_string()),
            names: &[COMMIT_OWNER, COMMIT_UNTIL],
            values: HashMap::from([
                (":me".to_string(), s(lease.holder.clone())),
                (
                    ":until".to_string(),
                    n(CommitLease::expiry(Timestamp::now())),
                ),
            ]),
            returning: false,
        };
        match self.update(what, spec).await? {
            Conditional::Applied(_) => {
                lease.renewed = tokio::time::Instant::now();
                Ok(true)
            }
            Conditional::Refused(_) => Ok(false),
        }
    }

    /// Gives the lease back, moving the partition's `since` to `since` if that is earlier, in
    /// one update; `false` when another process had taken it over.
    pub(super) async fn give_back_commit_lease(
        &self,
        what: &str,
        lease: CommitLease,
        since: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let since = match (lease.since, since.map(|t| t.unix())) {
            (Some(old), Some(new)) if new < old => Some(new),
            (None, new) => new,
            _ => None,
        };
        let mut values = HashMap::from([(":me".to_string(), s(lease.holder))]);
        let update = match since {
            Some(since) => {
                values.insert(":since".to_string(), n(since));
                "SET #since = :since REMOVE #commit_owner, #commit_until"
            }
            None => "REMOVE #commit_owner, #commit_until",
        };
        let spec = UpdateSpec {
            key: lease.cursor,
            update: update.to_string(),
            condition: Some("#commit_owner = :me".to_string()),
            names: if since.is_some() {
                &[COMMIT_OWNER, COMMIT_UNTIL, SINCE]
            } else {
                &[COMMIT_OWNER, COMMIT_UNTIL]
            },
            values,
            returning: false,
        };
        Ok(matches!(
            self.update(what, spec).await?,
            Conditional::Applied(_)
        ))
    }
}
