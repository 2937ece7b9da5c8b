//! Injected faults on the AWS path of a hunt, through a fault proxy on loopback in front of
//! the local AWS emulator: throttling storms, HTTP 5xx, answers lost beyond the SDK's timeout,
//! an Athena query failing midway, DynamoDB batches left part unprocessed, S3 bodies cut short.
//!
//! Each case hunts a small organization with the faults, then again once they stopped, and
//! compares what was delivered with a hunt that had none: a faulted run either hunts an
//! account exactly as the clean run does or fails it, naming it; the re-run then delivers
//! everything else, under the same ids. `--nocapture` prints each case's faults and outcome.

mod common;
mod delivery_check;
#[path = "sql/duckdb.rs"]
mod duckdb;
mod moto;
#[path = "athena_emulator/proxy.rs"]
mod proxy;
#[path = "athena_emulator/support.rs"]
mod support;

#[path = "aws_faults/athena.rs"]
mod athena;
#[path = "aws_faults/dynamodb.rs"]
mod dynamodb;
#[path = "aws_faults/org.rs"]
mod org;
#[path = "aws_faults/s3.rs"]
mod s3;
