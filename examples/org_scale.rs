//! Organization scale: a simulated hourly run over an AWS Organization of 1,000 member
//! accounts, on the local AWS emulator, through the code paths production takes.
//!
//! - The accounts come from Organizations (`muster.accounts_from = "organizations"`, through
//!   an assumed role in the management account), listed by the real roster.
//! - Activity comes from the Athena source with the shipped rules: per account and hour one
//!   activity query and one rule query. A proxy in front of the emulator makes Athena behave
//!   as it does at scale: each query stays QUEUED, then RUNNING, for a configurable time, and
//!   a start beyond the active-query quota is refused with `TooManyRequestsException`. Each
//!   account's activity query is answered with its own rows (tens of distinct principal and
//!   action pairs), registered in the emulator just before the query starts.
//! - State is the DynamoDB store in the emulator; findings go to a JSON-lines sink.
//!
//! Two hourly runs: the first hour (empty baselines) and the next (baselines exist: steady
//! state). For each it measures wall time, statements by kind (counted at the proxy, per
//! account: exactly one activity query per account-hour is the invariant), API calls by
//! service, throttles, DynamoDB calls and capacity (computed from item sizes; see
//! `org_scale/capacity.rs`), peak RSS and CPU of this process and of the emulator.
//!
//! It exits non-zero when an account is lost (not listed, failed) or an account-hour did not
//! get exactly one activity query. Run it with `scripts/bench_org.sh`.

#[path = "org_scale/activity.rs"]
mod activity;
#[path = "org_scale/capacity.rs"]
mod capacity;
#[path = "org_scale/proxy.rs"]
mod proxy;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_organizations::types::OrganizationFeatureSet;
use futures::{StreamExt, TryStreamExt};

use capacity::Sizes;
use proxy::{Kind, Latency, Plan, Planned, Proxy};
use trailhound::alert::{JsonlSink, Sink};
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::BaselineStore;
use trailhound::cloudtrail::{AccountId, Span, Timestamp};
use trailhound::config::Config;
use trailhound::detect::rules::RuleSet;
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster;
use trailhound::source::athena::{AthenaCounters, AthenaSource};
use trailhound::window::Window;

/// The account the emulator stands for with its dummy credentials: Athena's results queue is
/// kept per account and region.
const EMULATOR_ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// The first simulated hour starts here.
const FIRST_HOUR: &str = "2024-03-01T09:00:00Z";

struct Args {
    accounts: usize,
    concurrency: usize,
    quota: usize,
    latency: Latency,
    rules: bool,
    hours: usize,
    markdown: Option<String>,
    emulator_pid: Option<u32>,
    /// Before the steady-state hours, make the baselines look this many days old.
    mature_days: i64,
}

fn usage() -> &'static str {
    "org_scale [--accounts N] [--concurrency N] [--quota N] [--queued-ms MS] \
     [--running-ms MIN-MAX] [--no-rules] [--hours N] [--mature-days N] \
     [--markdown FILE] [--emulator-pid PID]\n\
     Needs TRAILHOUND_AWS_ENDPOINT (the emulator's URL); see scripts/bench_org.sh."
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        accounts: 1000,
        concurrency: 20,
        quota: 20,
        latency: Latency {
            queued: Duration::from_millis(500),
            running_min: Duration::from_millis(2000),
            running_max: Duration::from_millis(4000),
        },
        rules: true,
        hours: 2,
        markdown: None,
        emulator_pid: None,
        mature_days: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--accounts" => a.accounts = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--quota" => a.quota = value()?.parse()?,
            "--queued-ms" => a.latency.queued = Duration::from_millis(value()?.parse()?),
            "--running-ms" => {
                let v = value()?;
                let (lo, hi) = v.split_once('-').unwrap_or((&v, &v));
                a.latency.running_min = Duration::from_millis(lo.parse()?);
                a.latency.running_max = Duration::from_millis(hi.parse()?);
            }
            "--no-rules" => a.rules = false,
            "--hours" => a.hours = value()?.parse()?,
            "--markdown" => a.markdown = Some(value()?),
            "--emulator-pid" => a.emulator_pid = Some(value()?.parse()?),
            "--mature-days" => a.mature_days = value()?.parse()?,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if a.hours == 0 || a.accounts == 0 {
        bail!("--hours and --accounts must be at least 1");
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("org_scale: {e:#}");
            return ExitCode::from(2);
        }
    };
    let Ok(emulator) = std::env::var("TRAILHOUND_AWS_ENDPOINT") else {
        eprintln!(
            "org_scale: set TRAILHOUND_AWS_ENDPOINT to the emulator's URL\n{}",
            usage()
        );
        return ExitCode::from(2);
    };
    // The proxy's port is chosen before any thread exists, so that the environment every AWS
    // client of the run loads (as production loads it) can point at it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("bound").port();
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(args, listener, &emulator)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("org_scale: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// An SDK config straight to the emulator, for setting the scene (not counted).
async fn direct_sdk(endpoint: &str) -> SdkConfig {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "bench");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .load()
        .await
}

fn unique() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 20)
}

/// Creates an organization with `n` member accounts besides the management account; returns
/// its id and the members' ids.
async fn organization(sdk: &SdkConfig, role_arn: &str, n: usize) -> Result<(String, Vec<String>)> {
    let client = trailhound::muster::accounts::organizations_client(sdk, Some(role_arn)).await;
    let org = client
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .context("CreateOrganization")?;
    let org_id = org
        .organization()
        .and_then(|o| o.id())
        .context("an organization id")?
        .to_string();
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                let out = client
                    .create_account()
                    .account_name(format!("member-{i:04}"))
                    .email(format!("member-{i:04}@example.com"))
                    .send()
                    .await
                    .context("CreateAccount")?;
                out.create_account_status()
                    .and_then(|s| s.account_id())
                    .map(str::to_string)
                    .context("the emulator creates accounts at once")
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    Ok((org_id, ids))
}

fn config_text(
    org_id: &str,
    role_arn: &str,
    table: &str,
    concurrency: usize,
    rules: bool,
) -> String {
    format!(
        r#"# The config of the simulated hourly run (scripts/bench_org.sh).
[hunt]
lookback = "1h"

[muster]
accounts_from = "organizations"
assume_role_arn = "{role_arn}"
concurrency = {concurrency}

[source]
kind = "athena"

[trail]
bucket = "org-cloudtrail-logs"
org_id = "{org_id}"
regions = ["us-east-1", "eu-west-1", "us-west-2"]

[athena]
output_location = "s3://org-athena-results/trailhound/"

[store]
kind = "dynamodb"
table = "{table}"

[rules]
shipped = {rules}
"#
    )
}

/// `VmHWM` or `VmRSS` of this process, in MB.
fn memory(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Sets the peak RSS back to the current RSS, so each hour's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU seconds (user + system) of a process; `/proc` counts in USER_HZ, 100 a second.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn diff(after: AthenaCounters, before: AthenaCounters) -> AthenaCounters {
    AthenaCounters {
        queries_started: after.queries_started - before.queries_started,
        activity_queries: after.activity_queries - before.activity_queries,
        rule_queries: after.rule_queries - before.rule_queries,
        ddl_statements: after.ddl_statements - before.ddl_statements,
        bytes_scanned: after.bytes_scanned - before.bytes_scanned,
        retries: after.retries - before.retries,
        queries_failed: after.queries_failed - before.queries_failed,
    }
}

/// One hour's figures.
struct Hour {
    name: &'static str,
    listed: usize,
    failed: Vec<(String, String)>,
    wall: f64,
    muster_seconds: f64,
    findings_new: u64,
    findings_delivered: u64,
    rows: activity::RowCount,
    stats: proxy::Stats,
    athena: AthenaCounters,
    store_calls: u64,
    store_read_units: f64,
    store_write_units: f64,
    units: capacity::Units,
    peak_rss_mb: f64,
    cpu_self: f64,
    cpu_emulator: Option<f64>,
    /// Account-hours whose activity queries were not exactly one, with how many there were.
    not_one: Vec<(String, u32)>,
}

async fn run(args: Args, listener: std::net::TcpListener, emulator: &str) -> Result<bool> {
    let upstream = emulator
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(listener, &upstream, args.quota, args.latency);
    let rss_at_start = memory("VmRSS:");

    // The scene, straight on the emulator: an organization, its accounts, the table.
    let setup_started = Instant::now();
    let direct = direct_sdk(emulator).await;
    let management = format!("9{:011}", unique() % 100_000_000_000);
    let role_arn = format!("arn:aws:iam::{management}:role/trailhound-muster");
    // The management account is an account of the organization too, listed and hunted.
    let (org_id, members) = organization(&direct, &role_arn, args.accounts - 1).await?;
    let created: Vec<String> = std::iter::once(management.clone()).chain(members).collect();
    let table = format!("trailhound-org-{}", unique() % 1_000_000_000);
    DynamoStore::create_table(&trailhound::aws::dynamodb(&direct), &table).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    eprintln!(
        "org_scale: organization {org_id} with {} accounts and table {table} ready in {setup_seconds:.1}s",
        created.len()
    );

    // The run's parts, built as `trailhound hunt` builds them, from the environment.
    let config_toml = config_text(&org_id, &role_arn, &table, args.concurrency, args.rules);
    let config = Arc::new(Config::parse(&config_toml, "org_scale.toml")?);
    let sdk = trailhound::aws::load().await;
    let store = Arc::new(DynamoStore::new(
        trailhound::aws::dynamodb(&sdk),
        config.store.table.clone(),
    ));
    let rules = Arc::new(RuleSet::load(config.rules.shipped, &config.rules.folders)?);
    let source = Arc::new(
        AthenaSource::new(trailhound::aws::athena(&sdk), &config.trail, &config.athena)?
            .with_rules(&rules)?,
    );
    let findings_dir = tempfile::tempdir()?;
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::file(
        findings_dir.path().join("findings.jsonl"),
    )?)];

    // Every statement the run should send, by its exact text.
    let first_hour = Timestamp::parse(FIRST_HOUR)?;
    let hour_start = |h: usize| first_hour.saturating_add(Span::hours(h as i64));
    let accounts: Vec<AccountId> = created
        .iter()
        .map(|a| AccountId::parse(a))
        .collect::<Result<_, _>>()?;
    let mut statements = std::collections::HashMap::new();
    for (i, account) in accounts.iter().enumerate() {
        for h in 0..args.hours {
            let window = Window::new(hour_start(h), hour_start(h + 1)).context("a window")?;
            let activity = source.activity_sql(account, &window)?;
            let planned = |kind| Planned {
                account: i,
                hour: h,
                kind,
            };
            statements.insert(proxy::text_hash(&activity), planned(Kind::Activity));
            if let Some(rule_sql) = source.rule_sql(account, &window) {
                statements.insert(proxy::text_hash(&rule_sql?), planned(Kind::Rules));
            }
        }
    }
    let ids = created.clone();
    let starts: Vec<i64> = (0..args.hours).map(|h| hour_start(h).unix()).collect();
    proxy.set_plan(Plan {
        statements,
        results: Box::new(move |planned, sql| {
            let shape = match planned {
                Some(p) => p.kind,
                None if sql.contains("regions_distinct") => Kind::Activity,
                None if sql.contains(" AS record") => Kind::Rules,
                None => Kind::Other,
            };
            match (planned, shape) {
                (Some(p), Kind::Activity) => activity::registration(
                    EMULATOR_ACCOUNT,
                    REGION,
                    &ids[p.account],
                    p.hour,
                    starts[p.hour],
                ),
                (_, Kind::Activity) => activity::empty(EMULATOR_ACCOUNT, REGION, activity::COLUMNS),
                (_, Kind::Rules) => activity::empty(EMULATOR_ACCOUNT, REGION, &["record"]),
                (_, Kind::Other) => activity::empty(EMULATOR_ACCOUNT, REGION, &[]),
            }
        }),
    });
    proxy.take();

    let mut hours = Vec::new();
    let mut sizes_before = Sizes::default();
    let mut athena_before = source.counters();
    let mut store_before = store.counters();
    let created_set: BTreeSet<&str> = created.iter().map(String::as_str).collect();
    for h in 0..args.hours {
        let name = if h == 0 { "first hour" } else { "steady state" };
        if h == 1 && args.mature_days > 0 {
            let n = capacity::backdate(&upstream, &table, args.mature_days).await;
            eprintln!(
                "org_scale: {n} principals and accounts backdated by {} days",
                args.mature_days
            );
        }
        eprintln!("org_scale: hunting the {name} ({})", hour_start(h));
        reset_peak();
        let cpu_self_0 = cpu_seconds(None);
        let cpu_emulator_0 = cpu_seconds(args.emulator_pid);
        let started = Instant::now();
        // As `trailhound hunt` does it: the roster, then the run.
        let roster = muster::accounts::roster(&config.muster, None).await?;
        let listed = roster.accounts().await?;
        let muster_seconds = started.elapsed().as_secs_f64();
        let hunter = Hunter {
            config: config.clone(),
            store: store.clone() as Arc<dyn BaselineStore>,
            source: source.clone(),
            sinks: sinks.iter().map(|s| s.name()).collect(),
            now: hour_start(h + 1).saturating_add(config.hunt.settle),
            rules: rules.clone(),
        };
        let ids: Vec<AccountId> = listed.iter().map(|a| a.id.clone()).collect();
        let result = muster::run(
            &hunter,
            ids,
            Period::Scheduled,
            Mode::Hunt,
            config.muster.concurrency,
            &sinks,
        )
        .await?;
        let wall = started.elapsed().as_secs_f64();
        let peak_rss_mb = memory("VmHWM:");
        let cpu_self = cpu_seconds(None)
            .zip(cpu_self_0)
            .map_or(0.0, |(b, a)| b - a);
        let cpu_emulator = cpu_seconds(args.emulator_pid)
            .zip(cpu_emulator_0)
            .map(|(b, a)| b - a);
        let stats = proxy.take();
        let athena_now = source.counters();
        let store_now = store.counters();
        let sizes_after = Sizes::scan(&upstream, &table).await;
        let units = capacity::units(&stats.ddb, &sizes_before, &sizes_after);
        sizes_before = sizes_after;

        let listed_set: BTreeSet<&str> = listed.iter().map(|a| a.id.as_str()).collect();
        let mut failed: Vec<(String, String)> = result.summary.accounts_failed.clone();
        for missing in created_set.difference(&listed_set) {
            failed.push((missing.to_string(), "not listed by the muster".into()));
        }
        let mut rows = activity::RowCount::default();
        let mut not_one = Vec::new();
        for (i, account) in created.iter().enumerate() {
            let c = activity::count(account, h, hour_start(h).unix());
            rows.rows += c.rows;
            rows.hunted += c.hunted;
            let n = stats
                .started_by_account
                .get(&(i, h, Kind::Activity))
                .copied()
                .unwrap_or(0);
            if n != 1 {
                not_one.push((account.clone(), n));
            }
        }
        hours.push(Hour {
            name,
            listed: listed.len(),
            failed,
            wall,
            muster_seconds,
            findings_new: result.summary.findings_new,
            findings_delivered: result.summary.findings_delivered.values().sum(),
            rows,
            athena: diff(athena_now, athena_before),
            store_calls: store_now.calls - store_before.calls,
            store_read_units: store_now.read_units - store_before.read_units,
            store_write_units: store_now.write_units - store_before.write_units,
            stats,
            units,
            peak_rss_mb,
            cpu_self,
            cpu_emulator,
            not_one,
        });
        athena_before = athena_now;
        store_before = store_now;
        let last = hours.last().expect("an hour");
        eprintln!(
            "org_scale: {name}: {} accounts in {:.1}s, {} activity queries, {} failed",
            last.listed,
            last.wall,
            last.stats
                .started
                .get(&Kind::Activity)
                .copied()
                .unwrap_or(0),
            last.failed.len()
        );
    }

    let report = render(&args, &hours, setup_seconds, rss_at_start);
    print!("{report}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &report).with_context(|| format!("writing {path}"))?;
    }
    let mut ok = true;
    for hour in &hours {
        for (account, why) in hour.failed.iter().take(10) {
            eprintln!("org_scale: {}: account {account} lost: {why}", hour.name);
            ok = false;
        }
        ok &= hour.failed.is_empty();
        for (account, n) in hour.not_one.iter().take(10) {
            eprintln!(
                "org_scale: {}: account {account} had {n} activity queries, not 1",
                hour.name
            );
        }
        ok &= hour.not_one.is_empty();
    }
    if !ok {
        eprintln!("org_scale: FAILED: an account was lost or an account-hour did not get exactly one activity query");
    }
    Ok(ok)
}

fn per(n: f64, d: f64) -> f64 {
    if d > 0.0 {
        n / d
    } else {
        0.0
    }
}

/// The figures as a Markdown section body.
fn render(args: &Args, hours: &[Hour], setup_seconds: f64, rss_at_start: f64) -> String {
    let mut o = String::new();
    let l = &args.latency;
    let _ = writeln!(
        o,
        "Simulated: an organization of {} accounts (the management account and the members); Athena with each query QUEUED {:.1} s then \
         RUNNING {:.1}–{:.1} s (uniform), at most {} active queries (queued + running) before \
         `StartQueryExecution` is refused with `TooManyRequestsException`; `muster.concurrency = {}`; \
         the shipped rules {}; DynamoDB store and a JSON-lines sink. Setting up the organization \
         and table took {setup_seconds:.0} s (not counted).\n",
        args.accounts,
        l.queued.as_secs_f64(),
        l.running_min.as_secs_f64(),
        l.running_max.as_secs_f64(),
        args.quota,
        args.concurrency,
        if args.rules { "on (one rule query per account-hour)" } else { "off" },
    );
    if args.hours > 1 && args.mature_days > 0 {
        let _ = writeln!(
            o,
            "Between the hours the benchmark moves every principal's first-seen and every \
             account's history start back {} days, straight in the table, so that the \
             steady-state hour is judged as in a mature deployment (by default principals and \
             accounts younger than 7 days are learned, not alerted).\n",
            args.mature_days
        );
    }
    let all_one = hours
        .iter()
        .all(|h| h.not_one.is_empty() && h.failed.is_empty());
    let slowest = hours.iter().map(|h| h.wall).fold(0.0, f64::max);
    let _ =
        writeln!(
        o,
        "**Verdict:** {} accounts hunted in {} (slowest hour {:.0} s: {} 10 minutes); exactly one \
         activity query per account-hour and no account lost: {}.\n",
        args.accounts,
        hours
            .iter()
            .map(|h| format!("{:.0} s ({})", h.wall, h.name))
            .collect::<Vec<_>>()
            .join(" and "),
        slowest,
        if slowest < 600.0 { "under" } else { "NOT under" },
        if all_one { "yes" } else { "NO" },
    );
    let head: Vec<&str> = hours.iter().map(|h| h.name).collect();
    let _ = writeln!(o, "| | {} |", head.join(" | "));
    let _ = writeln!(o, "|---|{}", "---:|".repeat(hours.len()));
    let mut row = |label: &str, cell: &dyn Fn(&Hour) -> String| {
        let cells: Vec<String> = hours.iter().map(cell).collect();
        let _ = writeln!(o, "| {label} | {} |", cells.join(" | "));
    };
    let n = |h: &Hour, k: &str, op: &str| -> u64 {
        h.stats
            .operations
            .iter()
            .filter(|((s, o), _)| *s == k && (op.is_empty() || o == op))
            .map(|(_, c)| *c)
            .sum()
    };
    row("accounts listed / hunted / lost", &|h| {
        format!(
            "{} / {} / {}",
            h.listed,
            h.listed - h.failed.len().min(h.listed),
            h.failed.len()
        )
    });
    row("**wall time**", &|h| format!("**{:.1} s**", h.wall));
    row("of which listing the accounts", &|h| {
        format!("{:.1} s", h.muster_seconds)
    });
    row("account-hours per minute", &|h| {
        format!("{:.0}", per(h.listed as f64 * 60.0, h.wall))
    });
    row("**activity queries / account-hour**", &|h| {
        let a = h.stats.started.get(&Kind::Activity).copied().unwrap_or(0);
        format!(
            "**{:.2}** ({a}; {} account-hours not exactly 1)",
            per(a as f64, h.listed as f64),
            h.not_one.len()
        )
    });
    row("rule queries / account-hour", &|h| {
        let r = h.stats.started.get(&Kind::Rules).copied().unwrap_or(0);
        format!("{:.2}", per(r as f64, h.listed as f64))
    });
    row("other statements (DDL, unplanned)", &|h| {
        h.stats
            .started
            .get(&Kind::Other)
            .copied()
            .unwrap_or(0)
            .to_string()
    });
    row("quota refusals seen / trailhound's Athena retries", &|h| {
        format!("{} / {}", h.stats.quota_throttles, h.athena.retries)
    });
    row("peak active queries (quota)", &|h| {
        format!("{} ({})", h.stats.peak_active, args.quota)
    });
    row(
        "Athena calls: Start / GetQueryExecution / GetQueryResults",
        &|h| {
            format!(
                "{} / {} / {}",
                n(h, "athena", "StartQueryExecution"),
                n(h, "athena", "GetQueryExecution"),
                n(h, "athena", "GetQueryResults")
            )
        },
    );
    row("GetQueryExecution polls per query", &|h| {
        let started: u64 = h.stats.started.values().sum();
        format!(
            "{:.1}",
            per(n(h, "athena", "GetQueryExecution") as f64, started as f64)
        )
    });
    row("API calls: Athena / DynamoDB / Organizations / STS", &|h| {
        format!(
            "{} / {} / {} / {}",
            n(h, "athena", ""),
            n(h, "dynamodb", ""),
            n(h, "organizations", ""),
            n(h, "sts", "")
        )
    });
    row(
        "mean wait from a query's end to the poll that sees it",
        &|h| {
            format!(
                "{:.2} s",
                per(h.stats.poll_lag_seconds, h.stats.polls_done as f64)
            )
        },
    );
    row(
        "API errors (all services; refused conditional writes included)",
        &|h| {
            h.stats
                .services
                .values()
                .map(|s| s.errors)
                .sum::<u64>()
                .to_string()
        },
    );
    row(
        "distinct pairs: returned / hunted (not AWS services)",
        &|h| format!("{} / {}", h.rows.rows, h.rows.hunted),
    );
    row("new findings (delivered)", &|h| {
        format!("{} ({})", h.findings_new, h.findings_delivered)
    });
    let ddb_ops = [
        "GetItem",
        "BatchGetItem",
        "UpdateItem",
        "PutItem",
        "BatchWriteItem",
        "DeleteItem",
        "Query",
    ];
    row("DynamoDB calls by operation", &|h| {
        ddb_ops
            .iter()
            .filter_map(|op| {
                let c = n(h, "dynamodb", op);
                (c > 0).then(|| format!("{op} {c}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    row("**DynamoDB calls / hunted pair**", &|h| {
        format!(
            "**{:.3}**",
            per(n(h, "dynamodb", "") as f64, h.rows.hunted as f64)
        )
    });
    row("DynamoDB calls / account", &|h| {
        format!("{:.1}", per(n(h, "dynamodb", "") as f64, h.listed as f64))
    });
    row("**read units / hunted pair** (computed)", &|h| {
        format!("**{:.3}**", per(h.units.read, h.rows.hunted as f64))
    });
    row("**write units / hunted pair** (computed)", &|h| {
        format!("**{:.3}**", per(h.units.write, h.rows.hunted as f64))
    });
    row("read / write units in all (computed)", &|h| {
        format!("{:.0} / {:.0}", h.units.read, h.units.write)
    });
    row("read / write units by operation", &|h| {
        h.units
            .by_op
            .iter()
            .map(|(op, (r, w))| format!("{op} {r:.0}/{w:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    row("items read / written", &|h| {
        format!("{} / {}", h.units.items_read, h.units.items_written)
    });
    row(
        "store's own counters: calls, read / write units (emulator-reported)",
        &|h| {
            format!(
                "{}, {:.0} / {:.0}",
                h.store_calls, h.store_read_units, h.store_write_units
            )
        },
    );
    row("peak RSS of the process (VmHWM)", &|h| {
        format!("{:.0} MB", h.peak_rss_mb)
    });
    row("CPU: this process / the emulator", &|h| {
        format!(
            "{:.1} s / {}",
            h.cpu_self,
            h.cpu_emulator.map_or("n/a".into(), |c| format!("{c:.1} s"))
        )
    });
    row("emulator busy (≥ 1 request in hand)", &|h| {
        format!(
            "{:.1} s ({:.0}% of wall)",
            h.stats.emulator_busy_seconds,
            100.0 * per(h.stats.emulator_busy_seconds, h.wall)
        )
    });
    row(
        "emulator time by service: Athena / DynamoDB / Organizations+STS",
        &|h| {
            let t = |k: &str| h.stats.services.get(k).map_or(0.0, |s| s.emulator_seconds);
            format!(
                "{:.0} / {:.0} / {:.0} s",
                t("athena"),
                t("dynamodb"),
                t("organizations") + t("sts")
            )
        },
    );
    // Where an account's time goes: the run holds `concurrency` accounts at once, so each
    // account holds a slot for wall × concurrency ÷ accounts on average.
    let slot = |h: &Hour| per(h.wall * args.concurrency as f64, h.listed as f64);
    let part = |h: &Hour, seconds: f64| {
        format!(
            "{:.2} s ({:.0}%)",
            per(seconds, h.listed as f64),
            100.0 * per(per(seconds, h.listed as f64), slot(h))
        )
    };
    row("**per account: time holding a run slot**", &|h| {
        format!("**{:.2} s**", slot(h))
    });
    row("– Athena QUEUED + RUNNING (simulated)", &|h| {
        part(h, h.stats.simulated_query_seconds)
    });
    row("– polling after the query ended", &|h| {
        part(h, h.stats.poll_lag_seconds)
    });
    row("– waiting on the emulator (all calls)", &|h| {
        part(
            h,
            h.stats.services.values().map(|s| s.emulator_seconds).sum(),
        )
    });
    row("– the rest (trailhound, proxy, scheduling)", &|h| {
        let known = h.stats.simulated_query_seconds
            + h.stats.poll_lag_seconds
            + h.stats
                .services
                .values()
                .map(|s| s.emulator_seconds)
                .sum::<f64>();
        part(h, (slot(h) * h.listed as f64 - known).max(0.0))
    });
    row(
        "simulated Athena time ÷ concurrency (floor of wall)",
        &|h| {
            format!(
                "{:.1} s",
                h.stats.simulated_query_seconds / args.concurrency.min(args.quota).max(1) as f64
            )
        },
    );
    let _ = writeln!(
        o,
        "\nPeak RSS is of the whole benchmark process: trailhound plus the counting proxy and its \
         log (the process held {rss_at_start:.0} MB before setting up). \"Emulator time by \
         service\" sums each call's time in the emulator (calls overlap); \"emulator busy\" is \
         the time it had at least one request in hand, including {} result registrations the \
         benchmark itself sends. In the per-account split, an account's DynamoDB batches run up \
         to 4 at once, so \"waiting on the emulator\" counts overlapping time and the parts can \
         add up to more than the whole (\"the rest\" is then 0).",
        hours.iter().map(|h| h.stats.registrations).sum::<u64>()
    );
    let _ = writeln!(
        o,
        "\nHow it is simulated, and on what figures:\n\n\
         - Athena's quota counts queued and running queries together; one more start is refused \
         with `TooManyRequestsException` ([Athena service quotas](https://docs.aws.amazon.com/athena/latest/ug/service-limits.html), \
         whose example quota is 25). Default active DML quotas differ by region (200 in \
         us-east-1 and 100 in ap-northeast-2 as listed in \
         [DevSecOpsSamples/athena-sqs-apigw](https://github.com/DevSecOpsSamples/athena-sqs-apigw)); \
         20 is the lowest default trailhound's own config documents (`muster.concurrency`), \
         so the run is measured against that. A simple query takes about 2 s end to end in \
         the Athena console ([grafana/athena-datasource#40](https://github.com/grafana/athena-datasource/issues/40)); \
         an account-hour of CloudTrail JSON is taken as 0.5 s queued plus 2–4 s running.\n\
         - Trailhound's own polling is unchanged (first poll after 0.4 s, growing by half up to 5 s).\n\
         - Capacity is computed as DynamoDB bills it, from the sizes of the items each call \
         touched ([item sizes](https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html), \
         [read and write units](https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html)): \
         reads in 4 KB steps (half for eventually consistent reads, the minimum for a missing \
         item, each key of a batch on its own), writes in 1 KB steps of the larger of the item \
         before and after. The emulator's own `ConsumedCapacity` is a constant per call, so the \
         store's counters (last capacity row) are not a measure.\n\
         - \"Hunted pairs\" are the distinct (principal, action, outcome) rows of the hour's \
         activity queries whose principal is hunted (AWS services and service-linked roles are \
         ignored by default). The public hunters' design reads and writes every pair every hour: \
         2 calls, 0.5–1 read unit and 1 write unit per pair."
    );
    o
}
