//! `trailhound` commands. Flags describe the run; the TOML config describes the hunt.
//!
//! Exit codes: 0 the run completed; 1 findings at or above `--fail-on` were produced;
//! 2 an error, or a run that completed only in part (an account or a sink failed).

mod aws_commands;
mod commands;
mod demo;
mod parts;
mod rules;
mod scan;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use trailhound::alert::Level;
use trailhound::cloudtrail::Timestamp;

#[derive(Parser, Debug)]
#[command(
    name = "trailhound",
    version,
    about = "Hunts AWS CloudTrail for behaviour that is new for the principal doing it"
)]
pub struct Cli {
    /// Configuration file (TOML); see trailhound.example.toml. Defaults apply without one.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State file: baselines, watermarks and the findings outbox (SQLite).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "trailhound.db"
    )]
    pub state: PathBuf,
    /// No progress bar and no run summary on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log format on stderr: text for people, json for ECS and log pipelines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail (-v info, -vv debug). RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Every rule `[rules]` loads (the shipped pack and your folders): id, kind, severity,
    /// whether it runs, and its title.
    List,
    /// Check rule files or folders without running anything; every problem is listed.
    Check {
        /// `.toml` files or folders of them.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Convert Elasticsearch-era rules (items with RuleId, Query, AlertPeriodMinutes, ...) into
    /// a trailhound rule file, naming what cannot be converted and why.
    Import {
        /// A JSON file of items: an array, JSON lines, or `aws dynamodb scan` output.
        #[arg(
            value_name = "FILE",
            required_unless_present = "table",
            conflicts_with = "table"
        )]
        file: Option<PathBuf>,
        /// Read the items straight from this DynamoDB table instead.
        #[arg(long, value_name = "NAME")]
        table: Option<String>,
        /// Where to write the rule file (a folder to list in `[rules] folders`).
        #[arg(long, value_name = "FILE", default_value = "rules.d/imported.toml")]
        out: PathBuf,
        /// Also store each rule's memory (LastRun, LastAggResult) in the state store for these
        /// accounts, so that keys the old system had seen recently are not new on the first
        /// hunt.
        #[arg(long = "seed-state", value_name = "ACCOUNT")]
        seed_state: Vec<String>,
    },
    /// What each rule keeps in the store for an account: last evaluation, what fired then,
    /// and the groups carried into the next window.
    State {
        /// The account whose rule state to show.
        #[arg(long, value_name = "ID")]
        account: String,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// A table sorted by severity (default on a terminal).
    Table,
    /// One finding per line as JSON (default when stdout is not a terminal).
    Jsonl,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    /// Folder of CloudTrail logs: an `AWSLogs/` tree as synced from S3, or any folder of
    /// delivered log files (.json.gz, .json, JSON lines), walked recursively.
    #[arg(long, value_name = "DIR", default_value = "AWSLogs")]
    pub logs: PathBuf,
    /// Only these accounts (repeatable). Default: every account found.
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
    /// Accounts hunted at once (default: `[muster] concurrency`, 20).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// How findings are printed on stdout.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also append findings as JSON lines to this file (delivered once per finding).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit with code 1 when findings at or above this level were produced.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Level>,
}

fn parse_level(text: &str) -> Result<Level, String> {
    Level::ALL
        .into_iter()
        .find(|l| l.name() == text)
        .ok_or_else(|| "one of critical, high, medium, low, informational".to_string())
}

fn parse_list_out(text: &str) -> Result<trailhound::muster::list::ListOut, String> {
    trailhound::muster::list::ListOut::parse(text).map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).map_err(|e| e.to_string())
}

/// The default end of the demo's attack hour: a Monday afternoon, so that it falls in working hours.
pub const DEMO_END: &str = "2026-11-02T15:00:00Z";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Hunt: report behaviour new for its principal since the last run (or in --from/--until).
    Hunt {
        #[command(flatten)]
        logs: LogsArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// Replay from this delivery time (e.g. 2023-07-10T11:54:00Z) instead of the watermark.
        #[arg(long, value_parser = parse_time, requires = "until")]
        from: Option<Timestamp>,
        /// Replay up to this delivery time (exclusive).
        #[arg(long, value_parser = parse_time, requires = "from")]
        until: Option<Timestamp>,
    },
    /// Learn: fill the baseline from a period of logs without reporting anything.
    Learn {
        #[command(flatten)]
        logs: LogsArgs,
        /// Learn the last N days up to now minus settle.
        #[arg(long, conflicts_with_all = ["from", "until"])]
        days: Option<u32>,
        /// Learn from this delivery time.
        #[arg(long, value_parser = parse_time, requires = "until")]
        from: Option<Timestamp>,
        /// Learn up to this delivery time (exclusive).
        #[arg(long, value_parser = parse_time, requires = "from")]
        until: Option<Timestamp>,
    },
    /// Deliver findings still pending from earlier runs to every sink (the output flags and
    /// `[sinks]`: JSON lines files, Splunk HEC).
    Deliver {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print the accounts to hunt, from `[muster] accounts_from`, as one JSON array.
    ///
    /// Each item is an object: `{"id": "111122223333", "name": "prod", "ous": [...],
    /// "tags": {...}}`, sorted by id; `name` comes from Organizations, `ous` (the OUs of
    /// include_ous the account is under) and `tags` (those the tag filters name) only when
    /// those filters are set. It is the item list of a Step Functions Distributed Map: each
    /// item's `id` goes to `trailhound account --id`. With --ids: `["111122223333", ...]`.
    Muster {
        #[command(flatten)]
        logs: LogsArgs,
        /// Print bare account ids instead of objects.
        #[arg(long)]
        ids: bool,
        /// Write the list here instead of stdout: a local file, or `s3://BUCKET/KEY` (the
        /// object a Distributed Map's ItemReader reads; needs s3:PutObject on it).
        #[arg(long, value_name = "FILE|s3://BUCKET/KEY", value_parser = parse_list_out)]
        out: Option<trailhound::muster::list::ListOut>,
    },
    /// Hunt one account with the configured source and store (what each Map task runs).
    Account {
        /// The account to hunt (12 digits), as `muster` printed it.
        #[arg(long, value_name = "ACCOUNT")]
        id: String,
        #[command(flatten)]
        logs: LogsArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// Replay from this delivery time instead of the account's watermark.
        #[arg(long, value_parser = parse_time, requires = "until")]
        from: Option<Timestamp>,
        /// Replay up to this delivery time (exclusive).
        #[arg(long, value_parser = parse_time, requires = "from")]
        until: Option<Timestamp>,
    },
    /// Create or update the Athena database and CloudTrail table of `[athena]` (idempotent).
    Tables,
    /// The detection rules: list them, check rule files, import Elasticsearch-era rules.
    Rules {
        #[command(subcommand)]
        action: RulesCommand,
    },
    /// Show what the state file holds.
    Baseline,
    /// Print the distinct activity of a folder of logs: one row per account, principal,
    /// action and outcome, with counts and first and last times. No baseline, no findings:
    /// "who did what" over a copy of the trail.
    Scan {
        /// Folder of CloudTrail logs (as for `hunt`).
        #[arg(long, value_name = "DIR", default_value = "AWSLogs")]
        logs: PathBuf,
        /// Only these accounts (repeatable). Default: every account found.
        #[arg(long = "account", value_name = "ID")]
        accounts: Vec<String>,
        /// Only objects delivered from this time (files without a delivery time: records from
        /// this eventTime).
        #[arg(long, value_parser = parse_time, requires = "until")]
        from: Option<Timestamp>,
        /// Up to this time (exclusive).
        #[arg(long, value_parser = parse_time, requires = "from")]
        until: Option<Timestamp>,
        /// How rows are printed on stdout.
        #[arg(long, value_enum, default_value_t = scan::RowFormat::Csv)]
        format: scan::RowFormat,
    },
    /// Generate a synthetic organisation with injected attacks, learn 14 days, hunt the last hour.
    Demo {
        /// Keep the generated logs and state in this folder (default: a temporary folder, removed after).
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Seed of the generator; the same seed gives the same organisation.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Days of routine history.
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// End of the attack hour. Fixed by default so that the demo gives the same findings
        /// every day (the README quotes them); `now` for the current hour.
        #[arg(long, default_value = DEMO_END)]
        end: String,
        /// Only write the logs (into --keep) and print what was written as JSON; no learn, no
        /// hunt. For benchmarks and for trying other tools on the same logs.
        #[arg(long, requires = "keep")]
        generate_only: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trailhound: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::dispatch(&cli)) {
        Ok(code) => code,
        Err(e) => {
            // One line: the outermost context, then each cause.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("trailhound: {}", chain.join(": "));
            ExitCode::from(2)
        }
    }
}
