//! The baseline half of the table: an account's pairs, principals and cursor, all under the
//! account's partition key `A#<account>`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::calls::{built, Conditional, UpdateSpec};
use super::keys::{
    account_pk, key, n, opt_i64, opt_time, pair_sk, principal_sk, req_str, req_time, req_u64,
    rule_state_sk, s, sort_key_of, Item, ACTION, COUNT, CURSOR_SK, DAYS, EXPIRES_AT, FIRST_SEEN,
    KIND, LAST_SEEN, OUTCOME, PENDING_END, PK, PRINCIPAL, RULE, SINCE, SK, STATE, WATERMARK,
};
use super::DynamoStore;
use crate::baseline::{Commit, PairKey, PairState, PairWrite, PrincipalState, StoreError};
use crate::cloudtrail::{AccountId, IdentityType, Timestamp};
use crate::window::Cursor;

/// Principal writes in flight at once (each is its own conditional call).
const PRINCIPALS_IN_FLIGHT: usize = 8;
/// Pair writes in flight at once per commit: a first hunt writes thousands, each its own call.
const PAIRS_IN_FLIGHT: usize = 16;
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

    /// Pairs, then principals, then rule states, then the watermark: a stop part way leaves
    /// the watermark behind, so the window is redone, and every write here can be redone.
    pub(super) async fn write_commit(
        &self,
        account: &AccountId,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        let what = format!("committing the window of {account}");
        self.write_pairs(&what, account, &commit.pairs).await?;
        self.write_principals(&what, account, &commit.principals)
            .await?;
        self.write_rule_states(&what, account, &commit.rule_states)
            .await?;
        if !commit.pairs.is_empty() || !commit.principals.is_empty() {
            // The baseline written, the watermark not: a stop here redoes the window.
            crate::baseline::stop::point("commit");
        }
        let watermark = commit.watermark;
        if let Some(watermark) = watermark {
            self.advance_watermark(&what, account, watermark).await?;
        }
        Ok(())
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
        let writes = merged
            .into_iter()
            .map(|(sk, (rule, state))| {
                let item: Item = HashMap::from([
                    (PK.to_string(), s(pk.clone())),
                    (SK.to_string(), s(sk)),
                    (RULE.to_string(), s(rule.clone())),
                    (STATE.to_string(), s(state.clone())),
                ]);
                let put = PutRequest::builder().set_item(Some(item)).build();
                put.map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(built)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(what, writes).await
    }

    /// Each pair is one conditional update that also sets the first-seen only if it is not
    /// later than the stored one (or there is none): the condition keeps the earliest
    /// first-seen, so nothing is read first, and it holds against any concurrent writer,
    /// being decided by DynamoDB on the item itself. A refused update (the stored first-seen
    /// is earlier: an older window was committed first) is sent again without the first-seen.
    /// Batched puts cannot carry a condition; a write costs the same units either way.
    async fn write_pairs(
        &self,
        what: &str,
        account: &AccountId,
        pairs: &[PairWrite],
    ) -> Result<(), StoreError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let pk = account_pk(account);
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
        // Futures made up front; see `batch_get` on why not in the stream's `map`.
        let work: Vec<_> = merged
            .into_iter()
            .map(|(sk, write)| self.write_pair(what, key(pk.clone(), sk), write))
            .collect();
        stream::iter(work)
            .buffer_unordered(PAIRS_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    async fn write_pair(
        &self,
        what: &str,
        item_key: Item,
        write: PairWrite,
    ) -> Result<(), StoreError> {
        let (k, st) = (write.key, write.state);
        let vals = HashMap::from([
            (":principal".to_string(), s(k.principal)),
            (":action".to_string(), s(k.action)),
            (":outcome".to_string(), s(k.outcome)),
            (":last".to_string(), n(st.last_seen.unix())),
            (":count".to_string(), n(st.count)),
            (":days".to_string(), n(st.days)),
            (":expires".to_string(), n(st.expires.unix())),
        ]);
        // The caller decides the new state (counts, TTL); only the first-seen is history that
        // a refresh or a redone window must not move later.
        let state = "SET #principal = :principal, #action = :action, #outcome = :outcome, \
                     #last_seen = :last, #count = :count, #days = :days, #expires_at = :expires";
        let names = &[
            PRINCIPAL, ACTION, OUTCOME, LAST_SEEN, COUNT, DAYS, EXPIRES_AT, FIRST_SEEN,
        ];
        let mut with_first = vals.clone();
        with_first.insert(":first".to_string(), n(st.first_seen.unix()));
        let spec = UpdateSpec {
            key: item_key.clone(),
            update: format!("{state}, #first_seen = :first"),
            condition: Some(
                "attribute_not_exists(#first_seen) OR #first_seen >= :first".to_string(),
            ),
            names,
            values: with_first,
            returning: false,
        };
        if let Conditional::Applied(_) = self.update(what, spec).await? {
            return Ok(());
        }
        let spec = UpdateSpec {
            key: item_key,
            update: state.to_string(),
            condition: None,
            names: &names[..names.len() - 1],
            values: vals,
            returning: false,
        };
        self.update(what, spec).await.map(drop)
    }

    /// Each principal is one conditional update, so the earliest first-seen wins however many
    /// hunts write it; its kind is the one first written. New principals are rare after the
    /// first hunt, so this costs little. The account's `since` follows the same way.
    async fn write_principals(
        &self,
        what: &str,
        account: &AccountId,
        principals: &[(String, PrincipalState)],
    ) -> Result<(), StoreError> {
        let Some(since) = principals.iter().map(|(_, p)| p.first_seen).min() else {
            return Ok(());
        };
        let pk = account_pk(account);
        // Futures made up front; see `batch_get` on why not in the stream's `map`.
        let work: Vec<_> = principals
            .iter()
            .map(|(principal, state)| {
                let spec = UpdateSpec {
                    key: key(pk.clone(), principal_sk(principal)),
                    update: "SET #first_seen = :first, #principal = :principal, \
                             #kind = if_not_exists(#kind, :kind)"
                        .to_string(),
                    condition: Some(
                        "attribute_not_exists(#first_seen) OR #first_seen > :first".to_string(),
                    ),
                    names: &[FIRST_SEEN, PRINCIPAL, KIND],
                    values: HashMap::from([
                        (":first".to_string(), n(state.first_seen.unix())),
                        (":principal".to_string(), s(principal.clone())),
                        (":kind".to_string(), s(state.kind.name())),
                    ]),
                    returning: false,
                };
                // Refused means an earlier first-seen is already stored.
                self.update(what, spec)
            })
            .collect();
        stream::iter(work)
            .buffer_unordered(PRINCIPALS_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        let spec = UpdateSpec {
            key: key(pk, CURSOR_SK),
            update: "SET #since = :since".to_string(),
            condition: Some("attribute_not_exists(#since) OR #since > :since".to_string()),
            names: &[SINCE],
            values: values(&[(":since", since.unix())]),
            returning: false,
        };
        self.update(what, spec).await.map(drop)
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
