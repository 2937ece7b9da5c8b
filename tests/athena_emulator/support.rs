//! Shared by the Athena tests on the emulator: clients pointed at it (or at the fault
//! proxy), short waits, the config of the table, and registering the results moto's Athena
//! returns.

#![allow(dead_code)]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use trailhound::config::{AthenaConfig, PartitionMode, TrailConfig};
use trailhound::source::athena::{QueryPolicy, ResultTable};

use super::moto;
use super::proxy;

/// The account moto stands for when given its dummy credentials.
pub const MOTO_ACCOUNT: &str = "123456789012";

pub async fn sdk(endpoint: &str, region: &str) -> SdkConfig {
    let credentials =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials)
        .load()
        .await
}

/// Short waits, so fault tests take milliseconds.
pub fn quick() -> QueryPolicy {
    QueryPolicy {
        timeout: Duration::from_secs(20),
        poll_first: Duration::from_millis(20),
        poll_max: Duration::from_millis(100),
        attempts: 4,
        throttle_patience: Duration::from_secs(20),
        backoff_first: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
    }
}

/// Queues `results` in moto's Athena for `region`: each query started there takes the next.
pub async fn register(region: &str, results: &[ResultTable]) {
    let status = proxy::post_json(
        &moto::endpoint(),
        "/moto-api/static/athena/query-results",
        &registration(region, results),
    )
    .await;
    assert_eq!(status, 201, "moto took the query results");
}

/// The body of moto's Athena results API that queues `results` for `region`.
pub fn registration(region: &str, results: &[ResultTable]) -> String {
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|table| {
            let header = serde_json::json!({
                "Data": table.columns.iter().map(|c| serde_json::json!({"VarCharValue": c})).collect::<Vec<_>>()
            });
            let mut rows = vec![header];
            for row in &table.rows {
                let data: Vec<serde_json::Value> = row
                    .iter()
                    .map(|v| match v {
                        Some(text) => serde_json::json!({ "VarCharValue": text }),
                        None => serde_json::json!({}),
                    })
                    .collect();
                rows.push(serde_json::json!({ "Data": data }));
            }
            let columns: Vec<serde_json::Value> = table
                .columns
                .iter()
                .map(|c| serde_json::json!({"Name": c, "Label": c, "Type": "varchar", "Nullable": "UNKNOWN"}))
                .collect();
            serde_json::json!({ "rows": rows, "column_info": columns })
        })
        .collect();
    serde_json::json!({
        "account_id": MOTO_ACCOUNT,
        "region": region,
        "results": results,
    })
    .to_string()
}

pub fn trail(bucket: &str, org: Option<&str>, regions: &[String]) -> TrailConfig {
    TrailConfig {
        bucket: bucket.into(),
        prefix: String::new(),
        org_id: org.map(str::to_string),
        regions: regions.to_vec(),
    }
}

pub fn athena(mode: PartitionMode) -> AthenaConfig {
    AthenaConfig {
        partitions: mode,
        output_location: "s3://trailhound-athena-results/".into(),
        ..AthenaConfig::default()
    }
}

/// What the tables DDL of `mode` is, for loading DuckDB as Athena would see the bucket.
pub fn table_ddl(trail: &TrailConfig, athena: &AthenaConfig) -> Vec<String> {
    let sql = trailhound::source::athena::SqlSettings::new(trail, athena).unwrap();
    vec![
        sql.create_database().unwrap(),
        sql.create_table(athena.partitions, None).unwrap(),
        sql.update_table(athena.partitions, None).unwrap(),
    ]
}
