//! The outbox half of the table: findings (`F#<id>`, `F`), per sink whether it is owed or has
//! taken each one (`F#<id>`, `S#<sink>`), and each sink's queue of what it has not taken yet
//! (`O#<sink>`).
//!
//! Every write is to one item, and the order of the writes is what keeps them consistent:
//! the finding, then a sink's delivery item, then its queue entry; on delivery, the delivery
//! item, then the entry is removed. A stop between two writes leaves either a delivery item
//! without its entry, which the redone window's staging puts back, or an entry for a finding
//! already delivered, which `pending` recognises and removes.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnConsumedCapacity, WriteRequest,
};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::calls::{built, Conditional, Units, UpdateSpec};
use super::keys::{
    delivery_sk, finding_pk, key, n, names, opt_time, partition_key_of, queue_pk, queue_sk,
    req_str, req_time, s, sort_key_of, Item, ACCOUNT, DELIVERED_AT, FINDING_SK, ID, JSON, KIND,
    LEVEL, PK, SCORE, SINK, SK, STAGED_AT,
};
use super::DynamoStore;
use crate::alert::Finding;
use crate::baseline::StoreError;
use crate::cloudtrail::Timestamp;

/// Findings (or deliveries) worked on at once.
const IN_FLIGHT: usize = 8;
/// How many queue entries one `Query` page asks for at most.
const QUEUE_PAGE: usize = 500;

fn item(pairs: Vec<(&str, AttributeValue)>) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn delete(item_key: Item) -> Result<WriteRequest, StoreError> {
    let request = DeleteRequest::builder()
        .set_key(Some(item_key))
        .build()
        .map_err(built)?;
    Ok(WriteRequest::builder().delete_request(request).build())
}

impl DynamoStore {
    pub(super) async fn stage_findings(
        &self,
        findings: &[Finding],
        sinks: &[String],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        // One delivery item per sink: a sink named twice is owed once.
        let sinks: Vec<&str> = sinks
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Futures made up front; see `DynamoStore::batch_get` on why not in the stream.
        let work: Vec<_> = findings
            .iter()
            .map(|f| self.stage_one(f, &sinks, now))
            .collect();
        let new: Vec<bool> = stream::iter(work).buffered(IN_FLIGHT).try_collect().await?;
        Ok(new.into_iter().filter(|n| *n).count())
    }

    /// Stages one finding; true if it was not there before. The finding is created only if
    /// absent, so of two hunts staging it at once exactly one creates it, and both then owe
    /// it to each sink under the one staging time stored.
    async fn stage_one(
        &self,
        finding: &Finding,
        sinks: &[&str],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id = finding.id.as_str();
        let what = format!("staging finding {id}");
        let json = serde_json::to_string(finding).map_err(|e| {
            StoreError::Query(format!("finding {id} cannot be written as JSON: {e}"))
        })?;
        let own = item(vec![
            (PK, s(finding_pk(id))),
            (SK, s(FINDING_SK)),
            (ID, s(id)),
            (JSON, s(json)),
            (STAGED_AT, n(now.unix())),
            (ACCOUNT, s(finding.account.as_str())),
            (KIND, s(finding.kind.name())),
            (LEVEL, s(finding.severity.level.name())),
            (SCORE, n(finding.severity.score)),
        ]);
        let (new, staged_at) = match self.put(&what, own, true).await? {
            Conditional::Applied(_) => (true, now),
            Conditional::Refused(Some(old)) => (false, req_time(&old, STAGED_AT)?),
            Conditional::Refused(None) => (false, self.staged_at(&what, id).await?),
        };
        // Also for a finding already there: owed afresh to sinks it was never staged for,
        // and its queue entries put back if a stop lost them.
        for sink in sinks {
            self.owe(&what, id, sink, staged_at).await?;
        }
        Ok(new)
    }

    /// Makes `sink` owe finding `id` unless it already took it: the delivery item is created
    /// if absent, then the queue entry is written (an idempotent put) while the delivery is
    /// pending.
    async fn owe(
        &self,
        what: &str,
        id: &str,
        sink: &str,
        staged_at: Timestamp,
    ) -> Result<(), StoreError> {
        let delivery = item(vec![
            (PK, s(finding_pk(id))),
            (SK, s(delivery_sk(sink))),
            (SINK, s(sink)),
            (STAGED_AT, n(staged_at.unix())),
        ]);
        let pending = match self.put(what, delivery, true).await? {
            Conditional::Applied(_) => true,
            Conditional::Refused(Some(old)) => opt_time(&old, DELIVERED_AT)?.is_none(),
            // Not told: writing the entry is safe, `pending` drops it if it was delivered.
            Conditional::Refused(None) => true,
        };
        if pending {
            let entry = item(vec![
                (PK, s(queue_pk(sink))),
                (SK, s(queue_sk(staged_at, id))),
                (ID, s(id)),
                (SINK, s(sink)),
            ]);
            self.put(what, entry, false).await?;
        }
        Ok(())
    }

    /// When a stored finding was first staged, for a service that does not hand the old
    /// item back with a refused condition.
    async fn staged_at(&self, what: &str, id: &str) -> Result<Timestamp, StoreError> {
        let found = self
            .get_item(what, key(finding_pk(id), FINDING_SK), &[STAGED_AT], true)
            .await?;
        match found {
            Some(found) => req_time(&found, STAGED_AT),
            None => Err(StoreError::Query(format!(
                "{what}: DynamoDB refused to create it as existing, but it cannot be read"
            ))),
        }
    }

    /// Pages through `sink`'s queue from its head, keeping the entries whose delivery is
    /// still pending (with their finding) and removing the ones a stop left behind after a
    /// delivery. Every read is consistent: what was just staged or marked is seen as such.
    pub(super) async fn read_pending(
        &self,
        sink: &str,
        limit: usize,
    ) -> Result<Vec<Finding>, StoreError> {
        let what = format!("reading the outbox of sink {sink}");
        let qpk = queue_pk(sink);
        let dsk = delivery_sk(sink);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let page = (limit - out.len()).min(QUEUE_PAGE);
            let (entries, next) = self.queue_page(&what, &qpk, page, start.take()).await?;
            let wanted = entries.iter().flat_map(|(id, _)| {
                let pk = finding_pk(id);
                [(pk.clone(), FINDING_SK.to_string()), (pk, dsk.clone())]
            });
            let items = self
                .batch_get(&what, wanted, &[JSON, DELIVERED_AT], true)
                .await?;
            let mut json: HashMap<&str, &str> = HashMap::new();
            let mut delivered: HashMap<&str, bool> = HashMap::new();
            for found in &items {
                let (Some(pk), Some(sk)) = (partition_key_of(found), sort_key_of(found)) else {
                    continue;
                };
                if sk == FINDING_SK {
                    json.insert(pk, req_str(found, JSON)?);
                } else if sk == dsk {
                    delivered.insert(pk, opt_time(found, DELIVERED_AT)?.is_some());
                }
            }
            let mut stale = Vec::new();
            for (id, entry_sk) in &entries {
                let pk = finding_pk(id);
                if delivered.get(pk.as_str()) == Some(&true) {
                    stale.push(delete(key(qpk.clone(), entry_sk.clone()))?);
                    continue;
                }
                let text = json.get(pk.as_str()).ok_or_else(|| StoreError::Corrupt {
                    id: id.clone(),
                    reason: format!("the queue of sink {sink} lists it, but it is not stored"),
                })?;
                let finding = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                    id: id.clone(),
                    reason: e.to_string(),
                })?;
                out.push(finding);
            }
            self.batch_write(&what, stale).await?;
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// One page of queue entries (id, sort key), oldest first, and where the next page starts.
    async fn queue_page(
        &self,
        what: &str,
        qpk: &str,
        page: usize,
        start: Option<Item>,
    ) -> Result<(Vec<(String, String)>, Option<Item>), StoreError> {
        let page = i32::try_from(page).unwrap_or(i32::MAX);
        let out = self
            .send(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk")
                    .projection_expression("#sk, #id")
                    .set_expression_attribute_names(Some(names(&[PK, SK, ID])))
                    .expression_attribute_values(":pk", s(qpk))
                    .consistent_read(true)
                    .limit(page)
                    .set_exclusive_start_key(start.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            })
            .await
            .map_err(|e| self.fail(what, "Query", e))?;
        self.record(Units::Read, out.consumed_capacity());
        let entries = out
            .items()
            .iter()
            .map(|entry| {
                let sk = sort_key_of(entry).unwrap_or_default().to_string();
                Ok((req_str(entry, ID)?.to_string(), sk))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Without a filter every page but the last is full, so an empty page ends the queue
        // even if a service hands back a key to go on from.
        let next = out.last_evaluated_key.filter(|_| !entries.is_empty());
        Ok((entries, next))
    }

    /// Marks each id's delivery to `sink`, if it is pending: the delivery time is set only if
    /// none is (a re-send keeps the first), then the queue entries of what was marked are
    /// removed in batches.
    pub(super) async fn mark(
        &self,
        sink: &str,
        ids: &[String],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let what = format!("marking findings delivered to {sink}");
        let ids: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let dsk = delivery_sk(sink);
        let work: Vec<_> = ids
            .iter()
            .map(|id| {
                let spec = UpdateSpec {
                    key: key(finding_pk(id), dsk.clone()),
                    update: "SET #delivered_at = :now".to_string(),
                    // Not owed to this sink (no delivery item), or already taken: ignored.
                    condition: Some(
                        "attribute_exists(#pk) AND attribute_not_exists(#delivered_at)".to_string(),
                    ),
                    names: &[PK, DELIVERED_AT],
                    values: HashMap::from([(":now".to_string(), n(now.unix()))]),
                    returning: true,
                };
                self.update(&what, spec)
            })
            .collect();
        let marked: Vec<Conditional> = stream::iter(work).buffered(IN_FLIGHT).try_collect().await?;
        let qpk = queue_pk(sink);
        let mut done = Vec::new();
        for (id, outcome) in ids.iter().zip(marked) {
            if let Conditional::Applied(Some(now_stored)) = outcome {
                let staged_at = req_time(&now_stored, STAGED_AT)?;
                done.push(delete(key(qpk.clone(), queue_sk(staged_at, id)))?);
            }
        }
        self.batch_write(&what, done).await
    }
}
