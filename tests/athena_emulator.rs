//! The Athena source end to end on the local AWS emulator (moto). Moto accepts every query
//! without running it and returns whatever results a test registers, in order; the results
//! registered here are the rows DuckDB computes for the very SQL the source sends
//! (tests/sql/run_athena_sql.py), so the hunt is not fed hand-written rows. The faults are in
//! tests/athena_faults.rs.

mod common;
#[path = "sql/duckdb.rs"]
mod duckdb;
mod moto;
#[path = "athena_emulator/proxy.rs"]
mod proxy;
#[path = "athena_emulator/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use aws_config::SdkConfig;
use common::t;
use proxy::Proxy;
use support::{athena, quick, register, sdk, table_ddl, trail};
use trailhound::alert::FindingKind;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::{Config, PartitionMode};
use trailhound::demo::{generate, DemoOptions};
use trailhound::detect::rules::{RuleEngine, RuleSet};
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster::{self, RunResult};
use trailhound::source::athena::{ensure_tables_with, AthenaSource, ResultTable};
use trailhound::source::scan::FolderSource;
use trailhound::window::Window;

async fn upload(sdk: &SdkConfig, bucket: &str, root: &Path) -> usize {
    let s3 = trailhound::aws::s3(sdk);
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("CreateBucket");
    let mut stack = vec![root.to_path_buf()];
    let mut n = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let body = aws_sdk_s3::primitives::ByteStream::from(std::fs::read(&path).unwrap());
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .expect("PutObject");
            n += 1;
        }
    }
    n
}

fn config() -> Config {
    let mut c = Config::default();
    c.hunt.min_principal_age = Span::ZERO;
    c.hunt.account_min_history = Span::ZERO;
    c
}

fn finding_facts(result: &RunResult) -> BTreeSet<String> {
    result
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {:?} {} {} n={}",
                f.id, f.kind, f.account, f.principal.key, f.count
            )
        })
        .collect()
}

/// A hunt whose Athena queries are answered by DuckDB: the parts it runs on.
struct Answered<'a> {
    hunter: &'a Hunter,
    source: &'a AthenaSource,
    region: &'a str,
    logs: &'a Path,
    ddl: &'a [String],
    accounts: &'a [AccountId],
}

impl Answered<'_> {
    /// Runs `period` for each account in turn, each account's queries answered by the DuckDB
    /// rows of exactly the SQL the source will send for the windows the hunter plans. Returns
    /// the runs and that SQL, in the order it will be sent.
    async fn run(&self, period: Period, mode: Mode) -> (Vec<RunResult>, Vec<String>) {
        let mut plan = Vec::new();
        for account in self.accounts {
            for window in self.hunter.windows(account, period).await.unwrap() {
                let sql = self.source.activity_sql(account, &window).unwrap();
                plan.push((account.clone(), sql));
                // With rules, each window's activity query is followed by its rule query.
                if let Some(rule_sql) = self.source.rule_sql(account, &window) {
                    plan.push((account.clone(), rule_sql.unwrap()));
                }
            }
        }
        let queries: Vec<String> = plan.iter().map(|(_, q)| q.clone()).collect();
        // Trino's SQL/JSON path mode (`'lax $'`) means no path to DuckDB, which sqlglot
        // passes it to unchanged; `'$'` is the same path without the mode.
        let for_duckdb: Vec<String> = queries
            .iter()
            .map(|q| q.replace("'lax $'", "'$'"))
            .collect();
        let mut results = duckdb::run(self.logs, self.ddl, &for_duckdb).into_iter();
        let mut runs = Vec::new();
        for account in self.accounts {
            let mine: Vec<ResultTable> = plan
                .iter()
                .filter(|(a, _)| a == account)
                .map(|_| results.next().expect("a result per query"))
                .collect();
            register(self.region, &mine).await;
            let result = muster::run(self.hunter, vec![account.clone()], period, mode, 1, &[])
                .await
                .unwrap();
            assert!(!result.failed(), "{:?}", result.summary.accounts_failed);
            runs.push(result);
        }
        (runs, queries)
    }
}

#[tokio::test]
async fn hunt_through_athena_on_the_emulator_finds_what_the_scan_finds() {
    let region = "eu-west-3";
    // Through the proxy without faults, to see every statement sent.
    let proxy = Proxy::start(&moto::endpoint()).await;
    let aws = sdk(&proxy.url(), region).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(
        dir.path(),
        &DemoOptions {
            seed: 11,
            days: 1,
            end: t("2024-03-02T09:00:00Z"),
        },
    )
    .unwrap();
    let org = manifest.accounts.first().map(|_| ()).and_then(|_| {
        std::fs::read_dir(dir.path().join("AWSLogs"))
            .ok()?
            .find_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().to_string();
                name.starts_with("o-").then_some(name)
            })
    });
    let org = org.expect("an organization trail");
    let regions: Vec<String> = std::fs::read_dir(
        dir.path()
            .join("AWSLogs")
            .join(&org)
            .join(manifest.accounts[0].as_str())
            .join("CloudTrail"),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
    .collect();
    let bucket = format!("trailhound-athena-{}", moto::unique(10));
    // The bucket lives in us-east-1; Athena may query it from any region.
    let uploaded = upload(&moto::sdk().await, &bucket, dir.path()).await;
    assert!(uploaded > 100);

    let trail = trail(&bucket, Some(&org), &regions);
    let athena = athena(PartitionMode::Projection);
    // `trailhound tables`, twice: the second run changes nothing and fails on nothing.
    for _ in 0..2 {
        let tables = ensure_tables_with(
            trailhound::aws::athena(&aws),
            &trail,
            &athena,
            None,
            quick(),
        )
        .await
        .unwrap();
        assert_eq!(
            tables.statements,
            [
                "create_database.sql",
                "create_table_projection.sql",
                "update_table_projection.sql"
            ]
        );
        assert_eq!(tables.counters.ddl_statements, 3);
    }

    // The shipped rules run too: on Athena as one more query per account-hour, on the
    // folder from the records the scan keeps; both must find the same.
    let rules = Arc::new(RuleSet::shipped().unwrap());
    let source = Arc::new(
        AthenaSource::with_policy(trailhound::aws::athena(&aws), &trail, &athena, quick())
            .unwrap()
            .with_rules(&rules)
            .unwrap(),
    );
    let c = config();
    let store = tempfile::tempdir().unwrap();
    let hunter = Hunter {
        config: Arc::new(c.clone()),
        store: Arc::new(SqliteStore::open(&store.path().join("state.db")).unwrap()),
        source: source.clone(),
        sinks: vec![],
        now: manifest.hunt.1.saturating_add(c.hunt.settle),
        rules: rules.clone(),
    };
    let ddl = table_ddl(&trail, &athena);
    let history = Window::new(manifest.history.0, manifest.history.1).unwrap();
    let answered = Answered {
        hunter: &hunter,
        source: &source,
        region,
        logs: dir.path(),
        ddl: &ddl,
        accounts: &manifest.accounts,
    };
    let (_, learn_sql) = answered.run(Period::Fixed(history), Mode::Learn).await;
    let learned = source.counters();
    assert_eq!(
        learned.ddl_statements, 0,
        "no DDL in a hunt with projection"
    );

    // The scheduled hunt of the hour after the learned history.
    let (hunted, hunt_sql) = answered.run(Period::Scheduled, Mode::Hunt).await;
    // Moto received exactly the SQL whose DuckDB rows answered it, in order.
    let sent: Vec<String> = proxy
        .queries()
        .into_iter()
        .filter(|q| !q.starts_with("CREATE") && !q.starts_with("ALTER"))
        .collect();
    assert_eq!(sent, [learn_sql, hunt_sql].concat());
    let after = source.counters();
    let accounts = manifest.accounts.len() as u64;
    assert_eq!(
        after.activity_queries - learned.activity_queries,
        accounts,
        "one activity query per account-hour"
    );
    assert_eq!(
        after.rule_queries - learned.rule_queries,
        accounts,
        "one rule query per account-hour"
    );
    assert_eq!(
        after.queries_started - learned.queries_started,
        2 * accounts
    );
    assert_eq!(after.ddl_statements, 0);
    assert_eq!((after.retries, after.queries_failed), (0, 0));

    // The same learn and hunt on the folder: the same findings.
    let folder_store = tempfile::tempdir().unwrap();
    let folder_hunter = Hunter {
        store: Arc::new(SqliteStore::open(&folder_store.path().join("state.db")).unwrap()),
        source: Arc::new(
            FolderSource::open(dir.path())
                .unwrap()
                .with_rules(Arc::new(RuleEngine::new(&rules))),
        ),
        ..hunter.clone()
    };
    let accounts_list = manifest.accounts.clone();
    let learned_by_folder = muster::run(
        &folder_hunter,
        accounts_list.clone(),
        Period::Fixed(history),
        Mode::Learn,
        1,
        &[],
    )
    .await
    .unwrap();
    assert!(!learned_by_folder.failed());
    let by_folder = muster::run(
        &folder_hunter,
        accounts_list,
        Period::Scheduled,
        Mode::Hunt,
        1,
        &[],
    )
    .await
    .unwrap();
    let mut by_athena = BTreeSet::new();
    for run in &hunted {
        by_athena.extend(finding_facts(run));
    }
    assert!(!by_athena.is_empty(), "the attack hour has findings");
    assert_eq!(by_athena, finding_facts(&by_folder));
    let rule_findings = hunted
        .iter()
        .flat_map(|r| r.findings.iter())
        .filter(|f| f.kind == FindingKind::Rule)
        .count();
    assert!(rule_findings > 0, "the rules fire through Athena too");
    let found: BTreeSet<(String, String)> = hunted
        .iter()
        .flat_map(|r| r.findings.iter())
        .filter(|f| f.kind != FindingKind::HuntFailed)
        .map(|f| (f.account.to_string(), f.principal.key.clone()))
        .collect();
    for attack in &manifest.injected {
        assert!(
            found.contains(&(attack.account.to_string(), attack.principal_key.clone())),
            "the injected `{}` is found",
            attack.name
        );
    }
    eprintln!(
        "emulator hunt: {} accounts, {} activity and {} rule queries for the hour ({} in all, {} DDL), {} findings ({rule_findings} from rules)",
        accounts,
        after.activity_queries - learned.activity_queries,
        after.rule_queries - learned.rule_queries,
        after.queries_started,
        after.ddl_statements,
        by_athena.len()
    );
}
