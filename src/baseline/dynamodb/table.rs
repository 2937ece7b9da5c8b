//! Creating the table the store needs, idempotently: what the tests do, and what the
//! Terraform must declare the same way (keys, on-demand billing, TTL on `expires_at`).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;

use super::calls::built;
use super::keys::{EXPIRES_AT, PK, SK};
use crate::baseline::StoreError;

/// A new on-demand table is usually active within seconds.
const ACTIVE_WITHIN: Duration = Duration::from_secs(300);

fn refused(table: &str, reason: String) -> StoreError {
    StoreError::Open {
        path: format!("DynamoDB table {table}"),
        reason,
    }
}

fn failed<E>(table: &str, op: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = match err {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            err.code().unwrap_or("an unnamed service error"),
            err.message().unwrap_or("no message")
        ),
        other => DisplayErrorContext(&other).to_string(),
    };
    refused(table, format!("{op} failed: {detail}"))
}

/// Creates `table` with the store's key schema, on-demand billing, and TTL on `expires_at`;
/// a table that exists with the same keys is kept as it is (and gets TTL if it lacks it). A
/// table with other keys is refused: it belongs to something else.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(built)
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(built)
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(string(PK)?)
        .attribute_definitions(string(SK)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) => {}
        Err(e) => return Err(failed(table, "CreateTable", e)),
    }
    wait_until_active(client, table).await?;
    enable_ttl(client, table).await
}

/// Waits for the table to be usable and checks that its keys are ours.
async fn wait_until_active(client: &Client, table: &str) -> Result<(), StoreError> {
    let deadline = Instant::now() + ACTIVE_WITHIN;
    let mut pause = Duration::from_millis(100);
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| failed(table, "DescribeTable", e))?;
        let Some(t) = described.table() else {
            return Err(refused(table, "DescribeTable described nothing".into()));
        };
        let keys: Vec<(&str, &KeyType)> = t
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type()))
            .collect();
        if keys != [(PK, &KeyType::Hash), (SK, &KeyType::Range)] {
            return Err(refused(
                table,
                format!(
                    "it exists with keys {keys:?}, not ({PK} HASH, {SK} RANGE); name a table \
                     of trailhound's own"
                ),
            ));
        }
        if t.table_status() == Some(&TableStatus::Active) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(refused(
                table,
                format!("it was not ACTIVE within {}s", ACTIVE_WITHIN.as_secs()),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Turns TTL on for `expires_at` unless it already is (DynamoDB refuses to enable it twice).
async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| failed(table, "DescribeTimeToLive", e))?;
    let ttl = described.time_to_live_description();
    let status = ttl.and_then(|d| d.time_to_live_status());
    let attribute = ttl.and_then(|d| d.attribute_name());
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            if attribute == Some(EXPIRES_AT) =>
        {
            return Ok(());
        }
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            return Err(refused(
                table,
                format!(
                    "its TTL is on attribute {}, not {EXPIRES_AT}; trailhound's expiry would \
                     never be applied",
                    attribute.unwrap_or("(unnamed)")
                ),
            ));
        }
        _ => {}
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
        .map_err(built)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| failed(table, "UpdateTimeToLive", e))?;
    Ok(())
}
