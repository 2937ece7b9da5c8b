//! The baseline store: what each principal has done before, the per-account cursor of hunted
//! delivery time, and the findings outbox. SQLite on one machine, DynamoDB on AWS; the hunt
//! sees only [`BaselineStore`].

pub mod dynamodb;
pub mod sqlite;
pub mod stop;

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alert::Finding;
use crate::cloudtrail::{AccountId, IdentityType, Timestamp};
use crate::window::Cursor;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state store at {path} cannot be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("the state store at {path} was written by a newer trailhound (schema {found}, this one knows up to {known}); upgrade trailhound")]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("state store query failed: {0}")]
    Query(String),
    #[error("a stored finding is unreadable ({id}): {reason}")]
    Corrupt { id: String, reason: String },
}

/// What the baseline remembers about one behaviour: (principal, action) with an outcome
/// class (`success` is learned behaviour; `denied` is remembered only so the same denial is
/// not reported twice).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PairKey {
    pub principal: String,
    /// The action's key form, `source:name`.
    pub action: String,
    /// `success` or `denied`.
    pub outcome: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairState {
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Events counted when the pair was written (first sighting and each TTL refresh): a lower
    /// bound on how often it happened.
    pub count: u64,
    /// Writes of the pair: its first sighting and each refresh. Refreshes come at most once
    /// per `ttl_refresh` (a day) and only when the pair is seen, so this is about the number
    /// of days it was active on: what rarity is judged by.
    pub days: u64,
    /// After this the pair is unknown again, even if the store still holds it.
    pub expires: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalState {
    pub first_seen: Timestamp,
    pub kind: IdentityType,
}

/// A write to the baseline for one pair: an insert for a new pair, or a refresh of a known
/// one whose TTL is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairWrite {
    pub key: PairKey,
    pub state: PairState,
}

/// Everything a window changes, applied at once at the end of the window.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    pub pairs: Vec<PairWrite>,
    /// New principals and when they were first seen.
    pub principals: Vec<(String, PrincipalState)>,
    /// Rules' state after the window (rule id, state as JSON; see `detect::rule_state`),
    /// replacing what was stored for them.
    pub rule_states: Vec<(String, String)>,
    /// The end of the hunted window: the new watermark.
    pub watermark: Option<Timestamp>,
}

/// What a store has cost so far: calls to its service (retries included) and the capacity
/// units they consumed. Zero for stores that do not pay per call (SQLite).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StoreCounters {
    pub calls: u64,
    pub read_units: f64,
    pub write_units: f64,
}

#[async_trait]
pub trait BaselineStore: Send + Sync {
    /// Where `account` stands: its watermark and any window started but not committed.
    async fn cursor(&self, account: &AccountId) -> Result<Cursor, StoreError>;

    /// Records that a window ending at `end` has started, so that a run that stops part way
    /// redoes the same window.
    async fn begin_window(&self, account: &AccountId, end: Timestamp) -> Result<(), StoreError>;

    /// The stored state of the given pairs that have not expired at `at` (a pair is known
    /// while `at < expires`). Missing and expired pairs are absent from the map. Callers pass a
    /// whole window's keys at once; implementations answer them in batches, not one round trip
    /// each.
    async fn known_pairs(
        &self,
        account: &AccountId,
        keys: &[PairKey],
        at: Timestamp,
    ) -> Result<HashMap<PairKey, PairState>, StoreError>;

    /// The stored state of the given principals; unknown ones are absent.
    async fn known_principals(
        &self,
        account: &AccountId,
        keys: &[String],
    ) -> Result<HashMap<String, PrincipalState>, StoreError>;

    /// The stored state of the named rules in `account` (JSON, as committed); rules with
    /// none are absent.
    async fn rule_states(
        &self,
        account: &AccountId,
        rules: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;

    /// When the account's history starts: the earliest first-seen of any of its principals.
    async fn account_since(&self, account: &AccountId) -> Result<Option<Timestamp>, StoreError>;

    /// Applies a window's baseline writes and rule states and advances the watermark, clearing
    /// the pending window. On stores that allow it this is one transaction; otherwise the
    /// watermark is written last, so a stop part way only causes the window to be redone.
    async fn commit(&self, account: &AccountId, commit: &Commit) -> Result<(), StoreError>;

    /// Stores findings in the outbox as pending for each of `sinks`. A finding whose id is
    /// already there is left as it is (delivered stays delivered), except that it becomes
    /// pending for any of `sinks` it was not staged for before. A sink named only later is not
    /// owed findings staged before it. Returns how many findings were new.
    async fn stage(&self, findings: &[Finding], sinks: &[String]) -> Result<usize, StoreError>;

    /// Findings staged for `sink` and not yet delivered to it, oldest staged first, at most
    /// `limit`.
    ///
    /// Deliverers take turns: a store shared by several processes makes the one whose
    /// `pending` returned findings the only one delivering them until its `pending` comes back
    /// empty (or it ends, crashed or not). Another process's `pending` waits meanwhile, then
    /// sees what the first marked delivered; so runs at once send each finding once. A caller
    /// therefore drains the outbox: it calls `pending` until it returns nothing, marking what
    /// each sink took in between.
    async fn pending(&self, sink: &str, limit: usize) -> Result<Vec<Finding>, StoreError>;

    /// Marks findings as delivered to `sink`. Ids not pending for `sink` are ignored, and a
    /// finding already delivered keeps its first delivery.
    async fn mark_delivered(&self, sink: &str, ids: &[String]) -> Result<(), StoreError>;

    /// What the store has cost this process so far, for the run summary.
    fn counters(&self) -> StoreCounters {
        StoreCounters::default()
    }
}
