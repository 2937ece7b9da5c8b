//! Reaching the local AWS emulator (moto) that scripts/test.sh starts. Tests that need it
//! fail, with a message saying how to start it, when it is not there, rather than skip.

#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The emulator's URL, from `TRAILHOUND_AWS_ENDPOINT`.
pub fn endpoint() -> String {
    match std::env::var("TRAILHOUND_AWS_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "TRAILHOUND_AWS_ENDPOINT is not set: these tests need the local AWS emulator. Run \
             scripts/test.sh, or start it with `read -r e p < <(bash scripts/emulator.sh)` and \
             export TRAILHOUND_AWS_ENDPOINT=$e AWS_ENDPOINT_URL=$e AWS_ACCESS_KEY_ID=testing \
             AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1"
        ),
    }
}

/// An SDK config pointed at the emulator with its dummy credentials, whatever the
/// environment says, so that a test can never reach real AWS.
pub async fn sdk() -> SdkConfig {
    let credentials =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// Environment for a child `trailhound` process that must talk to the emulator only.
pub fn child_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// A number unique to this test in this run, so that tests sharing one emulator (and runs
/// reusing one) never meet each other's buckets or organizations.
pub fn unique(width: usize) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = nanos
        .wrapping_mul(31)
        .wrapping_add(u64::from(std::process::id()) * 1_000_003)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed) * 7_919);
    let text = format!("{n:020}");
    text[text.len() - width..].to_string()
}
