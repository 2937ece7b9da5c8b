//! Every DynamoDB call of the store goes through here: retried when throttled, counted with
//! the capacity it consumed, and turned into a [`StoreError`] that names the operation, the
//! table, and the service's code and message. Also the two batch shapes (`BatchGetItem` by
//! 100 keys, `BatchWriteItem` by 25 writes) with what DynamoDB leaves unprocessed sent again.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::keys::{key, names, projection, Item, PK, SK};
use super::retry::{drain, retriable, with_retries};
use super::DynamoStore;
use crate::baseline::StoreError;

/// DynamoDB's batch limits.
const GET_BATCH: usize = 100;
const WRITE_BATCH: usize = 25;
/// Batches of one request in flight at once: enough to hide latency, few enough that one
/// account's large window does not starve the others of the table's burst capacity.
const BATCHES_IN_FLIGHT: usize = 4;

/// Which side of the table's capacity a call spends.
#[derive(Clone, Copy, Debug)]
pub(super) enum Units {
    Read,
    Write,
}

/// How a conditional write ended: done (with the item as it now is, when asked for), or
/// refused by its condition (with the item as it was, when DynamoDB returned it).
#[derive(Debug)]
pub(super) enum Conditional {
    Applied(Option<Item>),
    Refused(Option<Item>),
}

/// One `UpdateItem`: `names` lists every attribute the expressions mention (as `#name`),
/// `values` every `:value`.
pub(super) struct UpdateSpec<'a> {
    pub key: Item,
    pub update: String,
    pub condition: Option<String>,
    pub names: &'a [&'a str],
    pub values: HashMap<String, AttributeValue>,
    /// Whether to hand back the item as the update left it.
    pub returning: bool,
}

/// A request the SDK refused to build; only a bug of ours can cause it.
pub(super) fn built(e: BuildError) -> StoreError {
    StoreError::Query(format!("a DynamoDB request could not be built: {e}"))
}

impl DynamoStore {
    /// Sends one request (built afresh by `attempt` each try), retrying while DynamoDB
    /// throttles. Every try is a call in the counters.
    pub(super) async fn send<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, SdkError<E>>
    where
        E: ProvideErrorMetadata,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
    {
        with_retries(
            &self.backoff,
            |e: &SdkError<E>| retriable(e.code()),
            || {
                self.tally(|c| c.calls += 1);
                attempt()
            },
        )
        .await
    }

    /// Adds what a response says it consumed. Prefers the read/write split when the service
    /// gives it (transactions), else counts the total on the call's own side.
    pub(super) fn record<'c>(
        &self,
        side: Units,
        consumed: impl IntoIterator<Item = &'c ConsumedCapacity>,
    ) {
        for c in consumed {
            let (read, write) = match (c.read_capacity_units(), c.write_capacity_units()) {
                (None, None) => match side {
                    Units::Read => (c.capacity_units().unwrap_or(0.0), 0.0),
                    Units::Write => (0.0, c.capacity_units().unwrap_or(0.0)),
                },
                (read, write) => (read.unwrap_or(0.0), write.unwrap_or(0.0)),
            };
            self.tally(|t| {
                t.read_units += read;
                t.write_units += write;
            });
        }
    }

    /// The error of a failed call: what the store was doing, the operation, the table, and
    /// the service's code and message. SDK errors carry no credentials, and nothing else of
    /// the request is quoted.
    pub(super) fn fail<E>(&self, what: &str, op: &str, err: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let table = &self.table;
        let detail = match err {
            // The service's own error: its code and message, as `ProvideErrorMetadata` reads
            // them from the response.
            SdkError::ServiceError(_) => format!(
                "{}: {}",
                err.code().unwrap_or("an unnamed service error"),
                err.message().unwrap_or("no message")
            ),
            other => format!(
                "DynamoDB could not be reached ({}); check the network, the region and \
                 AWS_ENDPOINT_URL",
                DisplayErrorContext(&other)
            ),
        };
        StoreError::Query(format!(
            "{what}: DynamoDB {op} on table {table} failed: {detail}"
        ))
    }

    /// Reads the items with the given (partition key, sort key)s, each with the `attrs` asked
    /// for plus its keys. Missing items are simply absent. The baseline reads eventually
    /// consistent (half the price: a baseline a second stale only makes a behaviour look new
    /// once more, and the outbox dedups that); the outbox reads what it just wrote, so it asks
    /// for `consistent` reads.
    pub(super) async fn batch_get(
        &self,
        what: &str,
        keys: impl IntoIterator<Item = (String, String)>,
        attrs: &[&str],
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        // DynamoDB refuses a batch that names one key twice.
        let unique: BTreeSet<(String, String)> = keys.into_iter().collect();
        let keys: Vec<Item> = unique.into_iter().map(|(pk, sk)| key(pk, sk)).collect();
        let mut wanted = vec![PK, SK];
        wanted.extend(attrs.iter().filter(|a| **a != PK && **a != SK));
        let projected = projection(&wanted);
        let placeholders = names(&wanted);

        // The futures are made up front rather than in a stream's `map`: a closure over
        // borrowed items kept inside the stream trips rustc's higher-ranked lifetime check
        // once `async_trait` asks for `Send`.
        let batches: Vec<Vec<Item>> = keys.chunks(GET_BATCH).map(<[Item]>::to_vec).collect();
        let work: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                drain(&self.backoff, what, batch, |keys| {
                    let request = KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .projection_expression(projected.clone())
                        .set_expression_attribute_names(Some(placeholders.clone()))
                        .consistent_read(consistent)
                        .build();
                    async move {
                        let request = request.map_err(built)?;
                        let out = self
                            .send(|| {
                                self.client
                                    .batch_get_item()
                                    .request_items(&self.table, request.clone())
                                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                                    .send()
                            })
                            .await
                            .map_err(|e| self.fail(what, "BatchGetItem", e))?;
                        self.record(Units::Read, out.consumed_capacity());
                        let found = out
                            .responses
                            .and_then(|mut r| r.remove(&self.table))
                            .unwrap_or_default();
                        let left = out
                            .unprocessed_keys
                            .and_then(|mut u| u.remove(&self.table))
                            .map(|k| k.keys)
                            .unwrap_or_default();
                        Ok((found, left))
                    }
                })
            })
            .collect();
        let pages: Vec<Vec<Vec<Item>>> = stream::iter(work)
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().flatten().collect())
    }

    /// Applies puts and deletes in batches of 25. Not atomic, and a batch may not name one
    /// key twice: callers merge writes to the same item first.
    pub(super) async fn batch_write(
        &self,
        what: &str,
        writes: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let batches: Vec<Vec<WriteRequest>> = writes
            .chunks(WRITE_BATCH)
            .map(<[WriteRequest]>::to_vec)
            .collect();
        let work: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                drain(&self.backoff, what, batch, |writes| async move {
                    let out = self
                        .send(|| {
                            self.client
                                .batch_write_item()
                                .request_items(&self.table, writes.clone())
                                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                                .send()
                        })
                        .await
                        .map_err(|e| self.fail(what, "BatchWriteItem", e))?;
                    self.record(Units::Write, out.consumed_capacity());
                    let left = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&self.table))
                        .unwrap_or_default();
                    Ok(((), left))
                })
            })
            .collect();
        stream::iter(work)
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Reads one item (its keys and `attrs`), or `None` when there is none.
    pub(super) async fn get_item(
        &self,
        what: &str,
        item_key: Item,
        attrs: &[&str],
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .send(|| {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(item_key.clone()))
                    .projection_expression(projection(attrs))
                    .set_expression_attribute_names(Some(names(attrs)))
                    .consistent_read(consistent)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            })
            .await
            .map_err(|e| self.fail(what, "GetItem", e))?;
        self.record(Units::Read, out.consumed_capacity());
        Ok(out.item)
    }

    /// Runs one `UpdateItem`; a refusal by its condition is an answer, not an error.
    pub(super) async fn update(
        &self,
        what: &str,
        spec: UpdateSpec<'_>,
    ) -> Result<Conditional, StoreError> {
        // DynamoDB refuses an empty value map, even when no expression needs one.
        let values = (!spec.values.is_empty()).then_some(spec.values);
        let sent = self
            .send(|| {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(spec.key.clone()))
                    .update_expression(spec.update.clone())
                    .set_condition_expression(spec.condition.clone())
                    .set_expression_attribute_names(Some(names(spec.names)))
                    .set_expression_attribute_values(values.clone())
                    .return_values(if spec.returning {
                        ReturnValue::AllNew
                    } else {
                        ReturnValue::None
                    })
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            })
            .await;
        match sent {
            Ok(out) => {
                self.record(Units::Write, out.consumed_capacity());
                Ok(Conditional::Applied(out.attributes))
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(Conditional::Refused(refused.item.clone()))
                }
                _ => Err(self.fail(what, "UpdateItem", e)),
            },
        }
    }
}

impl DynamoStore {
    /// Writes `item`, or only creates it (`attribute_not_exists(pk)`) when `only_new`; a
    /// refusal hands back the item already there.
    pub(super) async fn put(
        &self,
        what: &str,
        item: Item,
        only_new: bool,
    ) -> Result<Conditional, StoreError> {
        let (condition, placeholders) = if only_new {
            (
                Some("attribute_not_exists(#pk)".to_string()),
                Some(names(&[PK])),
            )
        } else {
            (None, None)
        };
        let sent = self
            .send(|| {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .set_condition_expression(condition.clone())
                    .set_expression_attribute_names(placeholders.clone())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            })
            .await;
        match sent {
            Ok(out) => {
                self.record(Units::Write, out.consumed_capacity());
                Ok(Conditional::Applied(None))
            }
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(Conditional::Refused(refused.item.clone()))
                }
                _ => Err(self.fail(what, "PutItem", e)),
            },
        }
    }
}
