//! One place where AWS clients are made: one shared SDK config (credentials, region,
//! `AWS_ENDPOINT_URL`, profiles all as the SDK resolves them), and the few adjustments our
//! clients need. Clients are cheap to clone; build them once per run.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK configuration from the environment, as every AWS tool does.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client. With an endpoint override (a local emulator, MinIO), buckets are addressed
/// by path, because such endpoints do not resolve `bucket.host` names.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let builder =
        aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}

pub fn athena(config: &SdkConfig) -> aws_sdk_athena::Client {
    aws_sdk_athena::Client::new(config)
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn organizations(config: &SdkConfig) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::new(config)
}

pub fn secretsmanager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}
