//! The production [`BaselineStore`]: one DynamoDB table holds the baseline, the per-account
//! cursors and the findings outbox of a whole organization, with the semantics of the SQLite
//! store.
//!
//! # The table
//!
//! Partition key `pk` (string), sort key `sk` (string), on-demand billing, TTL on
//! `expires_at` (epoch seconds). [`DynamoStore::create_table`] makes it so; the Terraform
//! must declare the same. Times are epoch seconds (numbers).
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | pair | `A#<account>` | `P#<principal>#<action>#<outcome>` | `principal`, `action`, `outcome`, `first_seen`, `last_seen`, `count`, `expires_at` |
//! | principal | `A#<account>` | `R#<principal>` | `principal`, `kind`, `first_seen` |
//! | cursor | `A#<account>` | `C` | `watermark`, `pending_end`, `since` (earliest principal first-seen), `commit_owner` and `commit_until` while a commit holds the lease |
//! | finding | `F#<id>` | `F` | `id`, `json` (the finding), `staged_at`, `account`, `kind`, `level`, `score` |
//! | delivery | `F#<id>` | `S#<sink>` | `sink`, `staged_at`, `delivered_at` (absent while pending) |
//! | queue entry | `O#<sink>` | `<staged_at, 20 digits>#<id>` | `id`, `sink` |
//! | delivery turn | `L#<sink>` | `T` | `sink`, `owner` and `until` while a process holds it |
//!
//! Inside a key, `#` and `%` of a value are escaped (`%23`, `%25`), so values that contain
//! separators cannot make two keys meet; a key longer than DynamoDB allows becomes
//! `<tag>~<sha256 of it>`. Keys are only ever built, never parsed: every item also carries
//! its values as plain attributes.
//!
//! Why this shape:
//! - **An account's items share its partition key.** Pair and principal lookups are
//!   `BatchGetItem` by exact key, 100 per call, so a window costs one read per asked key
//!   whatever the account's history; the cursor sits beside them. A large account's hot item
//!   collection is split by sort key by DynamoDB's adaptive capacity (the table has no local
//!   index, which would forbid that split).
//! - **A finding is keyed by its id**, which is a hash of what it is about: a redone window,
//!   or two hunts of one account at once, stage the same finding onto the same item.
//! - **Each sink has a queue that holds only what is pending**, sorted by staging time then
//!   id (SQLite's order). `pending` is one `Query` on `O#<sink>` and one `BatchGetItem` for
//!   the findings: it reads nothing delivered and nothing of other sinks, with no scan and no
//!   index. The delivery item per (finding, sink) remembers that the sink was owed it and
//!   when it took it, so staging again never owes a delivered finding twice.
//! - **TTL only on pairs.** They are the bulk and expire by design; principals, cursors and
//!   findings are small and kept, as in SQLite.
//!
//! # What guarantees what
//!
//! - *Expired is unknown*: `known_pairs` drops items with `expires_at <= at` itself;
//!   DynamoDB's TTL deletes them days later, which only saves space.
//! - *Commit order*: pairs, then principals, then rule states, then the cursor. A stop part
//!   way leaves the watermark behind, the window is redone, and every write is idempotent.
//! - *Earliest first-seen*: a commit writes its pairs and principals while it holds the
//!   partition's commit lease (on the cursor item; see `commit_lease.rs`), so no other
//!   commit of the partition writes between its consistent read of the stored first-seen
//!   and its batched put of the earlier one. The cursor's `since` moves the same way, in the
//!   update that gives the lease back. A commit that finds its lease taken over (it renewed
//!   too late) writes its pairs and principals again under a new lease, reading what the
//!   other holder wrote; after three such tries it fails, and its window is redone.
//! - *The watermark only moves forward*: one compare-and-set update; the pending window is
//!   cleared in that same update once the watermark reaches it.
//! - *Two hunts of one account at once report a new pair once*: both may decide the pair is
//!   new (the baseline read and write are not one transaction) and both build the finding
//!   under the same id. The finding item is created only if absent
//!   (`attribute_not_exists(pk)`), so exactly one hunt creates it and counts it new; both
//!   then owe it to each sink through a delivery item, also created only if absent, under the
//!   one stored staging time, so both write the same single queue entry. Each sink therefore
//!   receives it once: the outbox dedups, not the baseline.
//! - *Staging survives a stop*: writes go finding, delivery item, queue entry. Staging again
//!   (the redone window) puts back the queue entry of any delivery still pending, so a stop
//!   between two writes loses nothing.
//! - *Runs at once deliver a finding once*: a sink is delivered by one process at a time, the
//!   holder of its turn item (`L#<sink>`, `T`: holder and lease, kept by a heartbeat, given
//!   back when the queue is empty; see `deliverer.rs`). A process waiting for the turn then
//!   reads the queue again and finds what the holder marked gone. A holder that dies frees the
//!   turn a lease later.
//! - *A delivery is marked once*: `delivered_at` is set only if absent (the first time
//!   stands), then the queue entry is removed. An entry left behind by a stop in between is
//!   recognised by `pending`, which reads each entry's delivery item, and removed there.
//!
//! No transactions: every write is to one item, and the order of writes and the commit lease
//! carry the consistency, which costs half the write units of `TransactWriteItems` and behaves
//! the same on the local emulator, whose transactions are not isolated from concurrent
//! requests. (The emulator does not make a single conditional write atomic against a
//! concurrent one either, so two commits that race for the lease there can both take it;
//! DynamoDB decides a condition on the item itself.)
//!
//! # Cost
//!
//! Steady state per account and window: one consistent `GetItem` for the cursor, one
//! `UpdateItem` when the window starts, one `GetItem` for the account's history, one
//! `BatchGetItem` per 100 pairs and per 100 principals, and one `Query` per sink. A commit
//! that writes pairs or principals (new ones, or pairs whose TTL refresh is due) adds two
//! `UpdateItem` and a consistent `GetItem` for the lease, one consistent `BatchGetItem` per
//! 100 items and one
//! `BatchWriteItem` per 25: a write unit and a read unit per item, in 1/25 of the calls that
//! one conditional update per item took. The watermark is one more `UpdateItem`. A new finding
//! costs one write for itself and two per sink; a delivery, one update plus a share of a
//! batched delete.
//!
//! Throttling is retried with jittered backoff in one place (`calls.rs`), and what a batch
//! leaves unprocessed is sent again there. [`DynamoStore::counters`] counts every call the
//! store sends, its own retries included (the SDK's internal retries of transient errors are
//! not visible to it), and the capacity DynamoDB reports consuming; refused conditional
//! writes consume capacity that is not reported, so they are not in it.

mod baseline_items;
mod calls;
mod commit_lease;
mod deliverer;
mod keys;
mod outbox;
mod retry;
mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

pub use commit_lease::COMMIT_LEASE;
pub use deliverer::{LEASE as DELIVERY_LEASE, WAIT as DELIVERY_WAIT};
pub use keys::EXPIRES_AT;

use super::{BaselineStore, Commit, PairKey, PairState, PrincipalState, StoreCounters, StoreError};
use crate::alert::Finding;
use crate::cloudtrail::{AccountId, Timestamp};
use crate::window::Cursor;
use retry::Backoff;

/// The DynamoDB [`BaselineStore`]. Cheap to clone; clones share the client and the counters.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    backoff: Backoff,
    counters: Arc<Mutex<StoreCounters>>,
    /// This process's turns at delivering sinks (see `deliverer.rs`).
    turns: Arc<deliverer::Turns>,
}

impl DynamoStore {
    /// A store on `table`, which must exist (see [`DynamoStore::create_table`]). Build the
    /// client with [`crate::aws::dynamodb`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client: with_call_timeout(client),
            table: table.into(),
            backoff: Backoff::default(),
            counters: Arc::default(),
            turns: Arc::default(),
        }
    }

    /// Creates the table the store needs if it is missing: keys `pk` (HASH) and `sk` (RANGE),
    /// both strings, on-demand billing, TTL on [`EXPIRES_AT`]. Idempotent; refuses a table of
    /// the same name with other keys.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        table::create_table(client, table).await
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// DynamoDB calls sent so far (the store's retries included) and the capacity units the
    /// responses report.
    pub fn counters(&self) -> StoreCounters {
        *self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tally(&self, change: impl FnOnce(&mut StoreCounters)) {
        // A panic elsewhere cannot leave the counters half-updated: they are plain numbers.
        change(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// [`BaselineStore::stage`] with the staging time given, so tests and replays can order
    /// the outbox.
    pub async fn stage_at(
        &self,
        findings: &[Finding],
        sinks: &[String],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.stage_findings(findings, sinks, now).await
    }

    /// [`BaselineStore::mark_delivered`] with the delivery time given.
    pub async fn mark_delivered_at(
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
        self.mark(sink, ids, now).await
    }
}

/// The longest one attempt of one call may take when the client's config sets no limit. The
/// SDK sets none by default, and a connection that hangs would hold an account's hunt forever;
/// DynamoDB answers even a full batch in milliseconds. A timed-out attempt is retried by the
/// SDK, and every write here can be applied twice.
const CALL_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn with_call_timeout(client: Client) -> Client {
    let timeouts = client.config().timeout_config();
    if timeouts
        .and_then(|t| t.operation_attempt_timeout())
        .is_some()
    {
        return client;
    }
    let builder = timeouts.map(|t| t.to_builder()).unwrap_or_default();
    let mut conf = client.config().to_builder();
    conf.set_timeout_config(Some(
        builder
            .operation_attempt_timeout(CALL_ATTEMPT_TIMEOUT)
            .build(),
    ));
    Client::from_conf(conf.build())
}

#[async_trait]
impl BaselineStore for DynamoStore {
    async fn cursor(&self, account: &AccountId) -> Result<Cursor, StoreError> {
        self.read_cursor(account).await
    }

    async fn begin_window(&self, account: &AccountId, end: Timestamp) -> Result<(), StoreError> {
        self.write_pending_end(account, end).await
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
        self.read_pairs(account, keys, at).await
    }

    async fn known_principals(
        &self,
        account: &AccountId,
        keys: &[String],
    ) -> Result<HashMap<String, PrincipalState>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        self.read_principals(account, keys).await
    }

    async fn account_since(&self, account: &AccountId) -> Result<Option<Timestamp>, StoreError> {
        self.read_since(account).await
    }

    async fn rule_states(
        &self,
        account: &AccountId,
        rules: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        if rules.is_empty() {
            return Ok(HashMap::new());
        }
        self.read_rule_states(account, rules).await
    }

    async fn commit(&self, account: &AccountId, commit: &Commit) -> Result<(), StoreError> {
        self.write_commit(account, commit).await
    }

    async fn stage(&self, findings: &[Finding], sinks: &[String]) -> Result<usize, StoreError> {
        self.stage_at(findings, sinks, Timestamp::now()).await
    }

    async fn pending(&self, sink: &str, limit: usize) -> Result<Vec<Finding>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let found = self.read_pending(sink, limit).await?;
        // Nothing left to send: the turn goes back, and only then (an empty queue, the
        // common case, costs no write).
        if found.is_empty() {
            self.give_back_turn(sink).await?;
            return Ok(found);
        }
        if self.holds_turn(sink) {
            return Ok(found);
        }
        self.take_turn(sink).await?;
        // Another process may have delivered them while this one waited.
        let found = self.read_pending(sink, limit).await?;
        if found.is_empty() {
            self.give_back_turn(sink).await?;
        }
        Ok(found)
    }

    async fn mark_delivered(&self, sink: &str, ids: &[String]) -> Result<(), StoreError> {
        self.mark_delivered_at(sink, ids, Timestamp::now()).await
    }

    fn counters(&self) -> StoreCounters {
        DynamoStore::counters(self)
    }
}
