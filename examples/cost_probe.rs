//! The measured parts of the hourly cost model (`scripts/bench/cost.py`): what trailhound itself
//! would ask of Athena, and what its S3 source asks of S3, for a list of account-windows.
//!
//!     cost_probe sql < WINDOWS
//!     cost_probe s3 --logs DIR < WINDOWS
//!
//! WINDOWS has one JSON object per line: `{"trail": {...}, "athena": {...}, "account":
//! "111122223333", "from": "2026-10-01T10:00:00Z", "until": "2026-10-01T11:00:00Z"}`, where
//! `trail` and `athena` are the config file's `[trail]` and `[athena]` tables (`athena` may be
//! left out).
//!
//! `sql` prints, per line, the statements the Athena source would send, rendered by the
//! library's own renderer: `{"account", "from", "until", "ddl": [the table DDL of `trailhound
//! tables`, projection mode], "activity": "..."}`.
//!
//! `s3` runs against the local AWS emulator only (`AWS_ENDPOINT_URL` on loopback). It uploads
//! every file under DIR to the trail's bucket (DIR holds `AWSLogs/...` as the bucket does),
//! then runs the S3 source's `activity` for each window through a counting proxy
//! (`tests/athena_emulator/proxy.rs`) and prints, per line: `{"account", "from", "until",
//! "list_calls", "get_calls", "get_body_bytes", "list_body_bytes", "objects_read",
//! "bytes_read", "records", "rows"}`, the calls and bytes as the proxy saw them.

#[path = "../tests/athena_emulator/proxy.rs"]
mod proxy;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use aws_config::BehaviorVersion;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use proxy::Proxy;
use trailhound::cloudtrail::{AccountId, Timestamp};
use trailhound::config::{AthenaConfig, PartitionMode, TrailConfig};
use trailhound::source::athena::SqlSettings;
use trailhound::source::s3::S3Source;
use trailhound::source::ActivitySource;
use trailhound::window::Window;

/// One line of WINDOWS.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    trail: TrailConfig,
    #[serde(default)]
    athena: AthenaConfig,
    account: String,
    from: String,
    until: String,
}

impl Probe {
    fn parsed(&self) -> Result<(AccountId, Window)> {
        let account = AccountId::parse(&self.account)
            .map_err(|e| anyhow::anyhow!("account {}: {e}", self.account))?;
        let from = Timestamp::parse(&self.from).map_err(|e| anyhow::anyhow!("from: {e}"))?;
        let until = Timestamp::parse(&self.until).map_err(|e| anyhow::anyhow!("until: {e}"))?;
        let window = Window::new(from, until)
            .with_context(|| format!("from {} is not before until {}", self.from, self.until))?;
        Ok((account, window))
    }

    fn header(&self) -> serde_json::Value {
        json!({"account": self.account, "from": self.from, "until": self.until})
    }
}

fn read_probes() -> Result<Vec<Probe>> {
    let mut probes = Vec::new();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading WINDOWS from stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        probes.push(serde_json::from_str(&line).with_context(|| format!("stdin line {}", i + 1))?);
    }
    Ok(probes)
}

/// The statements of each window, as the Athena source renders them.
fn sql(probes: &[Probe]) -> Result<()> {
    for probe in probes {
        let (account, window) = probe.parsed()?;
        let settings = SqlSettings::new(&probe.trail, &probe.athena)?;
        let ddl = [
            settings.create_database()?,
            settings.create_table(PartitionMode::Projection, None)?,
            settings.update_table(PartitionMode::Projection, None)?,
        ];
        let mut out = probe.header();
        out["ddl"] = json!(ddl);
        out["activity"] = json!(settings.activity(&account, &window)?);
        println!("{out}");
    }
    Ok(())
}

/// Every file under `dir`, symbolic links followed, with its key (the path under `dir`).
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| folder.display().to_string())? {
            let path = entry?.path();
            if std::fs::metadata(&path)?.is_dir() {
                stack.push(path);
            } else {
                let key = path
                    .strip_prefix(dir)?
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                out.push((path, key));
            }
        }
    }
    Ok(out)
}

async fn upload(
    client: &aws_sdk_s3::Client,
    buckets: &BTreeSet<String>,
    dir: &Path,
) -> Result<usize> {
    for bucket in buckets {
        client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("creating the bucket {bucket} on the emulator"))?;
    }
    let files = files_under(dir)?;
    let puts = files.iter().flat_map(|(path, key)| {
        buckets.iter().map(move |bucket| async move {
            let body = std::fs::read(path).with_context(|| path.display().to_string())?;
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send()
                .await
                .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
            anyhow::Ok(())
        })
    });
    futures::stream::iter(puts)
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(files.len())
}

/// The S3 source's calls and bytes per window, through the counting proxy.
async fn s3(probes: &[Probe], logs: &Path) -> Result<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !(endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:")) {
        bail!(
            "cost_probe s3 creates buckets and uploads objects: it runs only against the local \
             emulator (AWS_ENDPOINT_URL=http://127.0.0.1:PORT from scripts/emulator.sh), got \
             `{endpoint}`"
        );
    }
    let direct = trailhound::aws::s3(&trailhound::aws::load().await);
    let buckets: BTreeSet<String> = probes.iter().map(|p| p.trail.bucket.clone()).collect();
    let uploaded = upload(&direct, &buckets, logs).await?;
    eprintln!("cost_probe: {uploaded} objects uploaded to {buckets:?}");

    let proxy = Proxy::start(&endpoint).await;
    let through = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .load()
        .await;
    let client = trailhound::aws::s3(&through);
    let counters = |p: &Proxy| {
        [
            p.seen("ListObjectsV2") as u64,
            p.seen("GetObject") as u64,
            p.body_bytes("GetObject"),
            p.body_bytes("ListObjectsV2"),
        ]
    };
    for probe in probes {
        let (account, window) = probe.parsed()?;
        let source = S3Source::new(client.clone(), &probe.trail)?;
        let before = counters(&proxy);
        let batch = source
            .activity(&account, &window)
            .await
            .with_context(|| format!("the S3 source on {account} in {window}"))?;
        let after = counters(&proxy);
        let [lists, gets, get_bytes, list_bytes] = std::array::from_fn(|i| after[i] - before[i]);
        let mut out = probe.header();
        out["list_calls"] = json!(lists);
        out["get_calls"] = json!(gets);
        out["get_body_bytes"] = json!(get_bytes);
        out["list_body_bytes"] = json!(list_bytes);
        out["objects_read"] = json!(batch.report.objects_read);
        out["bytes_read"] = json!(batch.report.bytes_read);
        out["records"] = json!(batch.report.records);
        out["rows"] = json!(batch.rows.len());
        println!("{out}");
    }
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!("usage: cost_probe sql < WINDOWS | cost_probe s3 --logs DIR < WINDOWS");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["sql"] => read_probes().and_then(|p| sql(&p)),
        ["s3", "--logs", dir] => match read_probes() {
            Ok(p) => s3(&p, Path::new(dir)).await,
            Err(e) => Err(e),
        },
        _ => return usage(),
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cost_probe: {e:#}");
            ExitCode::FAILURE
        }
    }
}
