//! The baseline half of the table: an account's pairs, principals and cursor, all under the
//! account's partition key `A#<account>`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::calls::{built, Conditional, UpdateSpec};
use super::commit_lease::CommitLease;
use super::keys::{
    account_pk, key, n, opt_i64, opt_time, pair_sk, principal_sk, req_str, req_time, req_u64,
    rule_state_sk, s, sort_key_of, Item, ACTION, COUNT, CURSOR_SK, DAYS, EXPIRES_AT, FIRST_SEEN,
    KIND, LAST_SEEN, OUTCOME, PENDING_END, PK, PRINCIPAL, RULE, SINCE, SK, STATE, WATERMARK,
};
use super::DynamoStore;
use crate::baseline::{Commit, PairKey, PairState, PairWrite, PrincipalState, StoreError};
use crate::cloudtrail::{AccountId, IdentityType, Timestamp};
use crate::window::Cursor;

/// Items read and written per round of a commit; the lease is renewed between rounds. A
/// round is 20 batch writes, a fraction of a second, far inside the lease.
const ROUND: usize = 500;
/// Commits of one window's baseline before giving up when each loses its lease: once is
/// already rare.
const LEASE_TRIES: u32 = 3;
/// Compare-and-set rounds on a cursor before giving up: each lost round means another hunt
/// of the same account committed in between, which happens once, not ten times.
const CURSOR_TRIES: u32 = 10;

fn values(list: &[(&str, i64)]) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    list.iter().map(|(k, v)| ((*k).to_string(), n(v))).collect()
}

impl DynamoStore {
    pub(super) async fn read_cursor(&self, account: &AccountId) -> Result<Cursor, StoreError> {
        let what = format!("reading the cursor of {account}");
        // Consistent: the next run must see the watermark the last one wrote.
        let item = self
            .get_item(
                &what,
                key(account_pk(account), CURSOR_SK),
                &[WATERMARK, PENDING_END],
                true,
            )
            .await?;
        let Some(item) = item else {
            return Ok(Cursor::default());
        };
        Ok(Cursor {
            watermark: opt_time(&item, WATERMARK)?,
            pending_end: opt_time(&item, PENDING_END)?,
        })
    }

    pub(super) async fn write_pending_end(
        &self,
        account: &AccountId,
        end: Timestamp,
    ) -> Result<(), StoreError> {
        let what = format!("recording the started window of {account}");
        let spec = UpdateSpec {
            key: key(account_pk(account), CURSOR_SK),
            update: "SET #pending_end = :end".to_string(),
            condition: None,
            names: &[PENDING_END],
            values: values(&[(":end", end.unix())]),
            returning: false,
        };
        self.update(&what, spec).await.map(drop)
    }

    pub(super) async fn read_pairs(
        &self,
        account: &AccountId,
        keys: &[PairKey],
        at: Timestamp,
    ) -> Result<HashMap<PairKey, PairState>, StoreError> {
        let what = format!("reading the baseline of {account}");
        let pk = account_pk(account);
        let asked: HashMap<String, &PairKey> = keys.iter().map(|k| (pair_sk(k), k)).collect();
        let items = self
            .batch_get(
                &what,
                asked.keys().map(|sk| (pk.clone(), sk.clone())),
                &[FIRST_SEEN, LAST_SEEN, COUNT, DAYS, EXPIRES_AT],
                false,
            )
            .await?;
        let mut found = HashMap::new();
        for item in &items {
            let Some(k) = sort_key_of(item).and_then(|sk| asked.get(sk)) else {
                continue;
            };
            let state = PairState {
                first_seen: req_time(item, FIRST_SEEN)?,
                last_seen: req_time(item, LAST_SEEN)?,
                count: req_u64(item, COUNT)?,
                // Items written before `days` existed count as one day.
                days: match item.get(DAYS) {
                    Some(_) => req_u64(item, DAYS)?,
                    None => 1,
                },
                expires: req_time(item, EXPIRES_AT)?,
            };
            // DynamoDB's TTL deletes expired items days late: expiry is decided here.
            if at < state.expires {
                found.insert((*k).clone(), state);
            }
        }
        Ok(found)
    }

    pub(super) async fn read_principals(
        &self,
        account: &AccountId,
        keys: &[String],
    ) -> Result<HashMap<String, PrincipalState>, StoreError> {
        let what = format!("reading the principals of {account}");
        let pk = account_pk(account);
        let asked: HashMap<String, &String> = keys.iter().map(|k| (principal_sk(k), k)).collect();
        let items = self
            .batch_get(
                &what,
                asked.keys().map(|sk| (pk.clone(), sk.clone())),
                &[KIND, FIRST_SEEN],
                false,
            )
            .await?;
        let mut found = HashMap::new();
        for item in &items {
            let Some(principal) = sort_key_of(item).and_then(|sk| asked.get(sk)) else {
                continue;
            };
            let kind = req_str(item, KIND)?;
            let kind = IdentityType::parse(kind).ok_or_else(|| {
                StoreError::Query(format!(
                    "the stored principal {principal} of {account} has an unknown kind `{kind}`; \
                     the table was changed by something other than trailhound"
                ))
            })?;
            let first_seen = req_time(item, FIRST_SEEN)?;
            found.insert((*principal).clone(), PrincipalState { first_seen, kind });
        }
        Ok(found)
    }

    pub(super) async fn read_since(
        &self,
        account: &AccountId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let what = format!("reading the history of {account}");
        let item = self
            .get_item(&what, key(account_pk(account), CURSOR_SK), &[SINCE], false)
            .await?;
        match item {
            Some(item) => opt_time(&item, SINCE),
            None => Ok(None),
        }
    }

    pub(super) async fn read_rule_states(
        &self,
        account: &AccountId,
        rules: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let what = format!("reading the rules' state of {account}");
        let pk = account_pk(account);
        let asked: HashMap<String, &String> = rules.iter().map(|r| (rule_state_sk(r), r)).collect();
        let items = self
            .batch_get(
                &what,
                asked.keys().map(|sk| (pk.clone(), sk.clone())),
                &[STATE],
                true,
            )
            .await?;
        let mut found = HashMap::new();
        for item in &items {
            if let Some(rule) = sort_key_of(item).and_then(|sk| asked.get(sk)) {
                found.insert((*rule).clone(), req_str(item, STATE)?.to_string());
            }
        }
        Ok(found)
    }

    /// Pairs and principals under the partition's commit lease, then rule states, then the
    /// watermark: a stop part way leaves the watermark behind, so the window is redone, and
    /// every write here can be redone.
    pub(super) async fn write_commit(
        &self,
        account: &AccountId,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        let what = format!("committing the window of {account}");
        if !commit.pairs.is_empty() || !commit.principals.is_empty() {
            self.write_baseline(&what, account, commit).await?;
            // The baseline written, the watermark not: a stop here redoes the window.
            crate::baseline::stop::point("commit");
        }
        self.write_rule_states(&what, account, &commit.rule_states)
            .await?;
        if let Some(watermark) = commit.watermark {
            self.advance_watermark(&what, account, watermark).await?;
        }
        Ok(())
    }

    /// Pairs and principals under the partition's commit lease. A commit whose lease was
    /// taken over part way (it renewed too late, or, on the local emulator, two commits took
    /// it at once) may have raced the other holder: it writes everything again under a new
    /// lease, reading what the other wrote.
    async fn write_baseline(
        &self,
        what: &str,
        account: &AccountId,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        let pk = account_pk(account);
        let since = commit.principals.iter().map(|(_, p)| p.first_seen).min();
        for _ in 0..LEASE_TRIES {
            let mut lease = self.take_commit_lease(what, &pk).await?;
            let written = async {
                Ok::<_, StoreError>(
                    self.write_pairs(what, &mut lease, &pk, &commit.pairs)
                        .await?
                        && self
                            .write_principals(what, &mut lease, &pk, &commit.principals)
                            .await?,
                )
            }
            .await;
            match written {
                Ok(true) => {
                    if self.give_back_commit_lease(what, lease, since).await? {
                        return Ok(());
                    }
                }
                // Taken over: the new holder has it, and this commit waits for it again.
                Ok(false) => {}
                Err(e) => {
                    // Free the partition now rather than a lease later; the error is what
                    // the caller needs to hear, not a failure to give back.
                    let _ = self.give_back_commit_lease(what, lease, None).await;
                    return Err(e);
                }
            }
            tracing::warn!(
                %account,
                "another process took over the commit lease; writing the window's baseline again"
            );
        }
        Err(StoreError::Query(format!(
            "{what}: the commit lease was taken over {LEASE_TRIES} times in a row (it lasts {} \
             s); the window is redone by the next run",
            super::COMMIT_LEASE.as_secs()
        )))
    }

    /// Batched puts: a rule's state is replaced whole.
    async fn write_rule_states(
        &self,
        what: &str,
        account: &AccountId,
        states: &[(String, String)],
    ) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let pk = account_pk(account);
        // One write per item per batch: the last state named for a rule wins.
        let merged: BTreeMap<String, (&String, &String)> = states
            .iter()
            .map(|(rule, state)| (rule_state_sk(rule), (rule, state)))
            .collect();
        let items = merged.into_iter().map(|(sk, (rule, state))| {
            HashMap::from([
                (PK.to_string(), s(pk.clone())),
                (SK.to_string(), s(sk)),
                (RULE.to_string(), s(rule.clone())),
                (STATE.to_string(), s(state.clone())),
            ])
        });
        self.batch_write(what, puts(items)?).await
    }

    /// The caller decides each pair's new state (counts, TTL); only the first-seen is history
    /// that a refresh or a redone window must not move later. So, under the lease, each round
    /// reads the stored first-seen of its pairs and writes the earlier of the two.
    async fn write_pairs(
        &self,
        what: &str,
        lease: &mut CommitLease,
        pk: &str,
        pairs: &[PairWrite],
    ) -> Result<bool, StoreError> {
        // One write per item: a pair named twice keeps its last state and the earlier
        // first-seen.
        let mut merged: BTreeMap<String, PairWrite> = BTreeMap::new();
        for write in pairs {
            let sk = pair_sk(&write.key);
            let mut write = write.clone();
            if let Some(before) = merged.get(&sk) {
                write.state.first_seen = write.state.first_seen.min(before.state.first_seen);
            }
            merged.insert(sk, write);
        }
        let merged: Vec<(String, PairWrite)> = merged.into_iter().collect();
        for round in merged.chunks(ROUND) {
            if !self.keep_commit_lease(what, lease).await? {
                return Ok(false);
            }
            let stored = self
                .stored_first_seen(what, pk, round.iter().map(|(sk, _)| sk))
                .await?;
            let items = round.iter().map(|(sk, write)| {
                let (k, st) = (&write.key, &write.state);
                let first = stored
                    .get(sk)
                    .map_or(st.first_seen, |&t| t.min(st.first_seen));
                HashMap::from([
                    (PK.to_string(), s(pk)),
                    (SK.to_string(), s(sk.clone())),
                    (PRINCIPAL.to_string(), s(k.principal.clone())),
                    (ACTION.to_string(), s(k.action.clone())),
                    (OUTCOME.to_string(), s(k.outcome.clone())),
                    (FIRST_SEEN.to_string(), n(first.unix())),
                    (LAST_SEEN.to_string(), n(st.last_seen.unix())),
                    (COUNT.to_string(), n(st.count)),
                    (DAYS.to_string(), n(st.days)),
                    (EXPIRES_AT.to_string(), n(st.expires.unix())),
                ])
            });
            self.batch_write(what, puts(items)?).await?;
        }
        Ok(true)
    }

    /// Principals the same way: the earliest first-seen stands, and the kind is the one first
    /// written.
    async fn write_principals(
        &self,
        what: &str,
        lease: &mut CommitLease,
        pk: &str,
        principals: &[(String, PrincipalState)],
    ) -> Result<bool, StoreError> {
        let mut merged: BTreeMap<String, (&String, PrincipalState)> = BTreeMap::new();
        for (principal, state) in principals {
            let entry = merged
                .entry(principal_sk(principal))
                .or_insert((principal, *state));
            entry.1.first_seen = entry.1.first_seen.min(state.first_seen);
        }
        let merged: Vec<_> = merged.into_iter().collect();
        for round in merged.chunks(ROUND) {
            if !self.keep_commit_lease(what, lease).await? {
                return Ok(false);
            }
            let keys = round.iter().map(|(sk, _)| (pk.to_string(), sk.clone()));
            let stored: HashMap<String, Item> = self
                .batch_get(what, keys, &[FIRST_SEEN, KIND], true)
                .await?
                .into_iter()
                .filter_map(|item| Some((sort_key_of(&item)?.to_string(), item)))
                .collect();
            let mut items = Vec::with_capacity(round.len());
            for (sk, (principal, state)) in round {
                let (mut first, mut kind) = (state.first_seen, s(state.kind.name()));
                if let Some(old) = stored.get(sk) {
                    first = first.min(req_time(old, FIRST_SEEN)?);
                    kind = s(req_str(old, KIND)?);
                }
                items.push(HashMap::from([
                    (PK.to_string(), s(pk)),
                    (SK.to_string(), s(sk.clone())),
                    (PRINCIPAL.to_string(), s((*principal).clone())),
                    (KIND.to_string(), kind),
                    (FIRST_SEEN.to_string(), n(first.unix())),
                ]));
            }
            self.batch_write(what, puts(items)?).await?;
        }
        Ok(true)
    }

    /// The stored first-seen of the items under `sks` that exist, read consistently.
    async fn stored_first_seen<'s>(
        &self,
        what: &str,
        pk: &str,
        sks: impl Iterator<Item = &'s String>,
    ) -> Result<HashMap<String, Timestamp>, StoreError> {
        let keys: Vec<(String, String)> = sks.map(|sk| (pk.to_string(), sk.clone())).collect();
        let items = self.batch_get(what, keys, &[FIRST_SEEN], true).await?;
        let mut found = HashMap::with_capacity(items.len());
        for item in &items {
            if let Some(sk) = sort_key_of(item) {
                found.insert(sk.to_string(), req_time(item, FIRST_SEEN)?);
            }
        }
        Ok(found)
    }

    /// Moves the watermark forward only, and ends the pending window when the watermark
    /// reaches it, as one compare-and-set on the cursor item. The common case (the watermark
    /// moves to the end of the pending window) is one call; otherwise the refused update hands
    /// back the cursor as it is, the new one is worked out from it, and written only if the
    /// cursor is still that.
    async fn advance_watermark(
        &self,
        what: &str,
        account: &AccountId,
        watermark: Timestamp,
    ) -> Result<(), StoreError> {
        let cursor_key = key(account_pk(account), CURSOR_SK);
        let w = watermark.unix();
        let mut seen: Option<(Option<i64>, Option<i64>)> = None;
        for _ in 0..CURSOR_TRIES {
            let spec = match seen {
                None => UpdateSpec {
                    key: cursor_key.clone(),
                    update: "SET #watermark = :w REMOVE #pending_end".to_string(),
                    condition: Some(
                        "(attribute_not_exists(#watermark) OR #watermark < :w) AND \
                         (attribute_not_exists(#pending_end) OR #pending_end <= :w)"
                            .to_string(),
                    ),
                    names: &[WATERMARK, PENDING_END],
                    values: values(&[(":w", w)]),
                    returning: false,
                },
                Some((old_w, old_p)) => {
                    let new_w = old_w.map_or(w, |old| old.max(w));
                    let new_p = old_p.filter(|p| *p > new_w);
                    if old_w == Some(new_w) && old_p == new_p {
                        return Ok(());
                    }
                    cursor_swap(&cursor_key, (old_w, old_p), (new_w, new_p))
                }
            };
            match self.update(what, spec).await? {
                Conditional::Applied(_) => return Ok(()),
                Conditional::Refused(Some(item)) => {
                    seen = Some((opt_i64(&item, WATERMARK)?, opt_i64(&item, PENDING_END)?));
                }
                Conditional::Refused(None) => {
                    let item = self
                        .get_item(what, cursor_key.clone(), &[WATERMARK, PENDING_END], true)
                        .await?;
                    seen = Some(match item {
                        Some(item) => (opt_i64(&item, WATERMARK)?, opt_i64(&item, PENDING_END)?),
                        None => (None, None),
                    });
                }
            }
        }
        Err(StoreError::Query(format!(
            "{what}: the cursor changed under every one of {CURSOR_TRIES} tries; another \
             process keeps committing this account at the same time"
        )))
    }
}

/// An update that moves a cursor from `old` to `new` (watermark, pending end) only if it is
/// still `old`.
fn cursor_swap(
    cursor_key: &Item,
    old: (Option<i64>, Option<i64>),
    new: (i64, Option<i64>),
) -> UpdateSpec<'static> {
    let mut vals = vec![(":nw", new.0)];
    let mut update = "SET #watermark = :nw".to_string();
    if new.1.is_none() && old.1.is_some() {
        update.push_str(" REMOVE #pending_end");
    }
    let was_w = match old.0 {
        Some(v) => {
            vals.push((":ow", v));
            "#watermark = :ow"
        }
        None => "attribute_not_exists(#watermark)",
    };
    let was_p = match old.1 {
        Some(v) => {
            vals.push((":op", v));
            "#pending_end = :op"
        }
        None => "attribute_not_exists(#pending_end)",
    };
    UpdateSpec {
        key: cursor_key.clone(),
        update,
        condition: Some(format!("{was_w} AND {was_p}")),
        names: &[WATERMARK, PENDING_END],
        values: values(&vals),
        returning: false,
    }
}

/// Put requests for whole items.
fn puts(items: impl IntoIterator<Item = Item>) -> Result<Vec<WriteRequest>, StoreError> {
    items
        .into_iter()
        .map(|item| {
            let put = PutRequest::builder().set_item(Some(item)).build();
            put.map(|p| WriteRequest::builder().put_request(p).build())
                .map_err(built)
        })
        .collect()
}
