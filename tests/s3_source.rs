//! The direct scan of the CloudTrail bucket, against the local emulator: a generated
//! organisation uploaded in the real layout reads back exactly as the folder source reads the
//! same files; a window lists only the day prefixes it touches; bad and archived objects are
//! named and skipped; a bucket that cannot be listed fails only its account.

mod common;
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use common::{t, user_call, write_object};
use futures::StreamExt;
use trailhound::alert::{Finding, FindingKind};
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::{Config, TrailConfig};
use trailhound::demo::{generate, DemoManifest, DemoOptions};
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster::{self, RunResult};
use trailhound::source::s3::S3Source;
use trailhound::source::scan::FolderSource;
use trailhound::source::{Activity, ActivityBatch, ActivitySource, Samples, SourceError};
use trailhound::window::Window;

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "us-west-2"];

/// The generated organisation, uploaded once for all tests of this file.
struct Uploaded {
    _dir: tempfile::TempDir,
    manifest: DemoManifest,
    bucket: String,
    org_id: String,
}

fn new_bucket() -> String {
    format!("trailhound-test-{}", moto::unique(12))
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("CreateBucket in the emulator");
}

/// Every file under `root`, with its key: the path below `root`, `/`-separated.
fn files_under(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let key: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                out.push((key.join("/"), path));
            }
        }
    }
    out.sort();
    out
}

async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, root: &Path) -> usize {
    let files = files_under(root);
    let n = files.len();
    futures::stream::iter(files)
        .map(|(key, path)| async move {
            let body = std::fs::read(&path).unwrap();
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutObject {key}: {e}"));
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    n
}

/// Generates two days of the demo organisation and uploads it, once per test binary. Done
/// on its own thread and runtime, because each test has its own runtime and SDK clients must
/// not outlive the runtime they were made on.
fn uploaded() -> &'static Uploaded {
    static UPLOADED: OnceLock<Uploaded> = OnceLock::new();
    UPLOADED.get_or_init(|| {
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let options = DemoOptions {
                seed: 11,
                days: 2,
                end: t("2026-11-02T15:00:00Z"),
            };
            let manifest = generate(dir.path(), &options).expect("the demo generates");
            let org_id = std::fs::read_dir(manifest.logs_root.join("AWSLogs"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .find(|n| n.starts_with("o-"))
                .expect("the demo writes an organization trail");
            let bucket = new_bucket();
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let started = std::time::Instant::now();
            let n = runtime.block_on(async {
                let s3 = trailhound::aws::s3(&moto::sdk().await);
                create_bucket(&s3, &bucket).await;
                upload(&s3, &bucket, &manifest.logs_root).await
            });
            eprintln!(
                "uploaded {n} objects in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            Uploaded {
                _dir: dir,
                manifest,
                bucket,
                org_id,
            }
        })
        .join()
        .expect("the upload thread")
    })
}

async fn s3_source(bucket: &str, org_id: Option<&str>, regions: &[&str]) -> S3Source {
    let trail = TrailConfig {
        bucket: bucket.to_string(),
        prefix: String::new(),
        org_id: org_id.map(str::to_string),
        regions: regions.iter().map(|r| r.to_string()).collect(),
    };
    S3Source::new(trailhound::aws::s3(&moto::sdk().await), &trail).unwrap()
}

/// A sample set compared as far as it is defined: once full, which values it kept depends
/// on the order objects were read in, so only "full, with more" is compared.
fn samples(s: &Samples) -> String {
    if s.more == 0 {
        format!("{:?}", s.values)
    } else {
        format!("{} kept, more", s.values.len())
    }
}

fn comparable(rows: &[Activity]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {:?} n={} {}..{} ro={:?} nomfa={} regions={} ips={} agents={} errors={} ids={}",
                r.principal.key,
                r.action.short(),
                r.outcome,
                r.count,
                r.first_time,
                r.last_time,
                r.read_only,
                r.logins_without_mfa,
                samples(&r.regions),
                samples(&r.source_ips),
                samples(&r.user_agents),
                samples(&r.error_codes),
                samples(&r.event_ids),
            )
        })
        .collect()
}

fn assert_same_batch(s3: &ActivityBatch, folder: &ActivityBatch) {
    let what = format!("account {} window {}", s3.account, s3.window);
    assert_eq!(comparable(&s3.rows), comparable(&folder.rows), "{what}");
    let (a, b) = (&s3.report, &folder.report);
    assert_eq!(a.records, b.records, "{what}");
    assert_eq!(a.records_used(), b.records_used(), "{what}");
    assert_eq!(a.records_duplicate, b.records_duplicate, "{what}");
    assert_eq!(a.objects_read, b.objects_read, "{what}");
    assert_eq!(a.bytes_read, b.bytes_read, "{what}");
}

fn finding_facts(result: &RunResult) -> BTreeSet<String> {
    result
        .findings
        .iter()
        .map(|f: &Finding| {
            format!(
                "{} {:?} {} {} score={} n={}",
                f.id, f.kind, f.account, f.principal.key, f.severity.score, f.count
            )
        })
        .collect()
}

fn config() -> Config {
    let mut c = Config::default();
    // Two days of history: let young principals and accounts alert, so there is something
    // to compare.
    c.hunt.min_principal_age = Span::ZERO;
    c.hunt.account_min_history = Span::ZERO;
    c
}

/// A source that keeps a copy of every batch it hands out, to compare two sources on the
/// very windows a run asked for.
struct Recording {
    inner: Arc<dyn ActivitySource>,
    batches: Mutex<BTreeMap<(AccountId, Window), ActivityBatch>>,
}

impl Recording {
    fn new(inner: Arc<dyn ActivitySource>) -> Arc<Self> {
        Arc::new(Recording {
            inner,
            batches: Mutex::new(BTreeMap::new()),
        })
    }

    fn take(&self) -> BTreeMap<(AccountId, Window), ActivityBatch> {
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
}

#[async_trait]
impl ActivitySource for Recording {
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError> {
        self.inner.accounts().await
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError> {
        let batch = self.inner.activity(account, window).await?;
        self.batches
            .lock()
            .unwrap()
            .insert((account.clone(), *window), batch.clone());
        Ok(batch)
    }
}

/// Learns the history, then hunts the last hour, with `source`.
async fn learn_and_hunt(source: Arc<dyn ActivitySource>, manifest: &DemoManifest) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let hunter = Hunter {
        config: Arc::new(config()),
        store: Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap()),
        source,
        sinks: vec![],
        now: manifest.hunt.1,
        rules: Default::default(),
    };
    let history = Window::new(manifest.history.0, manifest.history.1).unwrap();
    let hunt = Window::new(manifest.hunt.0, manifest.hunt.1).unwrap();
    let accounts = manifest.accounts.clone();
    let learned = muster::run(
        &hunter,
        accounts.clone(),
        Period::Fixed(history),
        Mode::Learn,
        2,
        &[],
    )
    .await
    .unwrap();
    assert!(!learned.failed(), "{:?}", learned.summary.accounts_failed);
    muster::run(&hunter, accounts, Period::Fixed(hunt), Mode::Hunt, 2, &[])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_and_folder_give_the_same_rows_and_findings() {
    let up = uploaded();
    let m = &up.manifest;
    let s3 = Arc::new(s3_source(&up.bucket, Some(&up.org_id), &[]).await);
    let mut s3_accounts = s3.accounts().await.unwrap();
    s3_accounts.sort();
    let mut accounts = m.accounts.clone();
    accounts.sort();
    assert_eq!(s3_accounts, accounts, "the bucket's account folders");

    let s3 = Recording::new(s3);
    let folder = Recording::new(Arc::new(FolderSource::open(&m.logs_root).unwrap()));
    let by_s3 = learn_and_hunt(s3.clone(), m).await;
    let by_folder = learn_and_hunt(folder.clone(), m).await;

    // Every window of every account: the same rows from the same objects.
    let (s3_batches, folder_batches) = (s3.take(), folder.take());
    assert_eq!(
        s3_batches.keys().collect::<Vec<_>>(),
        folder_batches.keys().collect::<Vec<_>>()
    );
    assert!(
        s3_batches.len() >= 3 * 4,
        "three accounts, three days and the hunt hour"
    );
    for (key, batch) in &s3_batches {
        assert_same_batch(batch, &folder_batches[key]);
        assert!(
            batch.report.objects_bad.is_empty(),
            "{:?}",
            batch.report.objects_bad
        );
    }

    // And the same findings.
    assert!(!by_s3.failed(), "{:?}", by_s3.summary.accounts_failed);
    assert!(!by_s3.findings.is_empty(), "the hunt hour has findings");
    assert_eq!(finding_facts(&by_s3), finding_facts(&by_folder));
    let (a, b) = (&by_s3.summary.report, &by_folder.summary.report);
    assert!(a.records > 0);
    assert_eq!(
        (a.records, a.objects_read, a.bytes_read),
        (b.records, b.objects_read, b.bytes_read)
    );
    eprintln!(
        "S3 hunt hour: {} list calls, {} objects, {} bytes read",
        a.s3_list_calls, a.objects_read, a.bytes_read
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_across_midnight_lists_only_its_two_days() {
    let up = uploaded();
    let m = &up.manifest;
    let folder = FolderSource::open(&m.logs_root).unwrap();
    let midnight = m.hunt.0.day_start();
    let across = Window::new(
        midnight.saturating_sub(Span::minutes(30)),
        midnight.saturating_add(Span::minutes(30)),
    )
    .unwrap();
    let later = Window::new(across.end, across.end.saturating_add(Span::hours(1))).unwrap();

    // Regions from the config: one listing per region and day, nothing else.
    let configured = s3_source(&up.bucket, Some(&up.org_id), &REGIONS).await;
    for account in &m.accounts {
        let batch = configured.activity(account, &across).await.unwrap();
        assert_eq!(
            batch.report.s3_list_calls,
            2 * REGIONS.len() as u64,
            "{account}"
        );
        assert!(
            batch.report.objects_read > 0,
            "{account} has objects around midnight"
        );
        assert_same_batch(&batch, &folder.activity(account, &across).await.unwrap());
    }

    // Regions discovered: one more listing, once per account.
    let discovering = s3_source(&up.bucket, Some(&up.org_id), &[]).await;
    let account = &m.accounts[0];
    let first = discovering.activity(account, &across).await.unwrap();
    assert_eq!(first.report.s3_list_calls, 1 + 2 * REGIONS.len() as u64);
    let second = discovering.activity(account, &later).await.unwrap();
    assert_eq!(second.report.s3_list_calls, REGIONS.len() as u64);
    assert_same_batch(&second, &folder.activity(account, &later).await.unwrap());
}

const ACCOUNT: &str = "111122223333";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_archived_objects_are_named_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let call = |n: u32, time: &str| {
        user_call(
            ACCOUNT,
            "alice",
            "s3.amazonaws.com",
            "ListBuckets",
            time,
            &format!("e{n}"),
        )
    };
    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-01T10:05:00Z",
        &[call(1, "2024-03-01T10:01:00Z")],
    );
    let good = write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-01T10:20:00Z",
        &[call(2, "2024-03-01T10:15:00Z")],
    );
    // A corrupt object, named as CloudTrail names them, between the good ones.
    let corrupt = good.with_file_name(format!(
        "{ACCOUNT}_CloudTrail_us-east-1_20240301T1010Z_bad.json.gz"
    ));
    std::fs::write(&corrupt, b"\x1f\x8b\x08\x00this is not gzip").unwrap();

    let s3 = trailhound::aws::s3(&moto::sdk().await);
    let bucket = new_bucket();
    create_bucket(&s3, &bucket).await;
    upload(&s3, &bucket, root).await;
    // An object moved to Glacier by a lifecycle rule: listed, but not readable.
    let archived_key = format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/03/01/{ACCOUNT}_CloudTrail_us-east-1_20240301T1030Z_cold.json.gz"
    );
    s3.put_object()
        .bucket(&bucket)
        .key(&archived_key)
        .storage_class(StorageClass::Glacier)
        .body(ByteStream::from(std::fs::read(&good).unwrap()))
        .send()
        .await
        .unwrap();

    let source = s3_source(&bucket, None, &["us-east-1"]).await;
    let account = AccountId::parse(ACCOUNT).unwrap();
    let window = Window::new(t("2024-03-01T10:00:00Z"), t("2024-03-01T10:25:00Z")).unwrap();
    let batch = source.activity(&account, &window).await.unwrap();
    let folder = FolderSource::open(root)
        .unwrap()
        .activity(&account, &window)
        .await
        .unwrap();
    assert_same_batch(&batch, &folder);
    assert_eq!(batch.rows.len(), 1);
    assert_eq!(batch.rows[0].count, 2, "both good objects are read");
    let corrupt_url = format!(
        "s3://{bucket}/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/03/01/{}",
        corrupt.file_name().unwrap().to_string_lossy()
    );
    assert!(
        batch.report.objects_bad.contains_key(&corrupt_url),
        "{:?}",
        batch.report.objects_bad
    );

    let cold = Window::new(t("2024-03-01T10:25:00Z"), t("2024-03-01T10:35:00Z")).unwrap();
    let batch = source.activity(&account, &cold).await.unwrap();
    let reason = &batch.report.objects_bad[&format!("s3://{bucket}/{archived_key}")];
    assert!(reason.contains("InvalidObjectState"), "{reason}");
    assert_eq!(batch.report.records, 0);
}

/// Routes each account to its own source.
struct PerAccount(Vec<(AccountId, Arc<dyn ActivitySource>)>);

#[async_trait]
impl ActivitySource for PerAccount {
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError> {
        Ok(self.0.iter().map(|(a, _)| a.clone()).collect())
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError> {
        let (_, source) = self
            .0
            .iter()
            .find(|(a, _)| a == account)
            .expect("a routed account");
        source.activity(account, window).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_cannot_be_listed_fails_only_its_account() {
    let up = uploaded();
    let m = &up.manifest;
    let (broken, healthy) = (m.accounts[0].clone(), m.accounts[1].clone());
    let missing: Arc<dyn ActivitySource> =
        Arc::new(s3_source(&new_bucket(), Some(&up.org_id), &REGIONS).await);
    let real: Arc<dyn ActivitySource> =
        Arc::new(s3_source(&up.bucket, Some(&up.org_id), &REGIONS).await);
    let source = Arc::new(PerAccount(vec![
        (broken.clone(), missing),
        (healthy.clone(), real),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let hunter = Hunter {
        config: Arc::new(config()),
        store: Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap()),
        source,
        sinks: vec![],
        now: m.hunt.1,
        rules: Default::default(),
    };
    let hunt = Window::new(m.hunt.0, m.hunt.1).unwrap();
    let result = muster::run(
        &hunter,
        vec![broken.clone(), healthy],
        Period::Fixed(hunt),
        Mode::Hunt,
        2,
        &[],
    )
    .await
    .unwrap();
    let failed = &result.summary.accounts_failed;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, broken.as_str());
    assert!(
        failed[0].1.contains("s3:ListObjectsV2") && failed[0].1.contains("NoSuchBucket"),
        "the failure names the call and S3's code: {}",
        failed[0].1
    );
    assert!(result
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::HuntFailed && f.account == broken));
    assert!(
        result.summary.report.records > 0,
        "the healthy account was hunted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_command_hunts_one_account_from_the_bucket() {
    let up = uploaded();
    let m = &up.manifest;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trailhound.toml"),
        format!(
            "[source]\nkind = \"s3\"\n[trail]\nbucket = \"{}\"\norg_id = \"{}\"\n",
            up.bucket, up.org_id
        ),
    )
    .unwrap();
    let account = m.accounts[1].to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .current_dir(dir.path())
        .envs(moto::child_env())
        .args([
            "--config",
            "trailhound.toml",
            "--state",
            "state.db",
            "account",
        ])
        .args(["--id", &account, "--format", "jsonl"])
        .args([
            "--from",
            &m.hunt.0.to_string(),
            "--until",
            &m.hunt.1.to_string(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 accounts hunted"), "{stderr}");
    assert!(stderr.contains("S3 list requests"), "{stderr}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let finding: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(finding["account"], account.as_str(), "{line}");
    }
}
