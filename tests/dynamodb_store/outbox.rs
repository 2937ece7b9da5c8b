//! The outbox on DynamoDB: the outbox half of the store contract (staging is idempotent per
//! finding id, also across processes; pending is per sink and in staging order; a delivery is
//! marked once), with the raw item access the contract's [`Backdoor`] needs.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use trailhound::alert::Finding;
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::{BaselineStore, StoreError};
use trailhound::cloudtrail::Timestamp;

use super::contract::{self, Backdoor, Subject};
use super::{fresh, raw_item, subject};

/// A store on its own table, with the table's client: the store's clock-taking methods and
/// its items behind its back.
pub struct Table {
    pub store: DynamoStore,
    pub client: Client,
}

impl Subject for Table {
    fn store(&self) -> &dyn BaselineStore {
        &self.store
    }

    fn backdoor(&self) -> &dyn Backdoor {
        self
    }
}

#[async_trait]
impl Backdoor for Table {
    async fn stage_at(
        &self,
        findings: &[Finding],
        sinks: &[String],
        at: Timestamp,
    ) -> Result<usize, StoreError> {
        self.store.stage_at(findings, sinks, at).await
    }

    async fn mark_delivered_at(
        &self,
        sink: &str,
        ids: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.store.mark_delivered_at(sink, ids, at).await
    }

    async fn stored_delivery_time(&self, id: &str, sink: &str) -> Option<i64> {
        let item = raw_item(
            &self.client,
            self.store.table(),
            &format!("F#{id}"),
            &format!("S#{sink}"),
        )
        .await?;
        match item.get("delivered_at")? {
            AttributeValue::N(n) => Some(n.parse().expect("a number")),
            other => panic!("delivered_at is not a number: {other:?}"),
        }
    }

    async fn overwrite_finding_json(&self, id: &str, json: &str) {
        self.client
            .update_item()
            .table_name(self.store.table())
            .key("pk", AttributeValue::S(format!("F#{id}")))
            .key("sk", AttributeValue::S("F".into()))
            .update_expression("SET #j = :j")
            .expression_attribute_names("#j", "json")
            .expression_attribute_values(":j", AttributeValue::S(json.into()))
            .send()
            .await
            .unwrap();
    }
}

outbox_contract_tests!(subject);
contract_tests!(
    subject;
    staging_the_same_finding_twice_keeps_one_and_its_delivery_state,
    values_that_look_like_injection_are_stored_verbatim,
);

#[tokio::test]
async fn two_stores_staging_at_once_keep_each_finding_once() {
    let (first, client) = fresh("concurrent").await;
    // A second process: its own store on the same table.
    let second = DynamoStore::new(client.clone(), first.table());
    contract::two_stores_staging_at_once_keep_each_finding_once(Arc::new(first), Arc::new(second))
        .await;
}
