//! What each command does, wired from the library's parts.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use trailhound::alert::{Finding, Sink};
use trailhound::baseline::BaselineStore;
use trailhound::cloudtrail::{AccountId, Span, Timestamp};
use trailhound::config::Config;
use trailhound::detect::rules::RuleSet;
use trailhound::detect::Mode;
use trailhound::hunt::{Hunter, Period};
use trailhound::muster::{self, RunResult};
use trailhound::source::ActivitySource;
use trailhound::window::{Plan, Window};

use super::parts;
use super::{Cli, Command, Format, LogsArgs, OutputArgs};

pub async fn dispatch(cli: &Cli) -> Result<ExitCode> {
    let config = Arc::new(load_config(cli.config.as_deref())?);
    match &cli.command {
        Command::Hunt {
            logs,
            output,
            from,
            until,
        } => {
            let period = match (from, until) {
                (Some(f), Some(u)) => Period::Fixed(window(*f, *u)?),
                _ => Period::Scheduled,
            };
            let result = run(cli, &config, logs, period, Mode::Hunt, output).await?;
            Ok(exit_code(&result, output))
        }
        Command::Learn {
            logs,
            days,
            from,
            until,
        } => {
            let period = match (days, from, until) {
                (_, Some(f), Some(u)) => window(*f, *u)?,
                (Some(d), _, _) => {
                    let settled =
                        Plan::new(Timestamp::now(), config.hunt.settle, config.hunt.lookback)
                            .settled;
                    window(settled.saturating_sub(Span::days(i64::from(*d))), settled)?
                }
                _ => bail!("learn needs a period: --days N, or --from TIME --until TIME"),
            };
            let quiet_output = OutputArgs {
                format: Some(Format::Jsonl),
                out: None,
                fail_on: None,
            };
            let result = run(
                cli,
                &config,
                logs,
                Period::Fixed(period),
                Mode::Learn,
                &quiet_output,
            )
            .await?;
            Ok(exit_code(&result, &quiet_output))
        }
        Command::Deliver { output } => {
            let store = parts::store(&cli.state, &config).await?;
            let sinks = parts::sinks(output, &config).await?;
            let (delivered, failures) = muster::deliver(store.as_ref(), &sinks).await;
            if !cli.quiet {
                for (sink, n) in &delivered {
                    eprintln!("delivered {n} pending findings to {sink}");
                }
            }
            for (sink, reason) in &failures {
                eprintln!("trailhound: delivery to {sink} failed: {reason}");
            }
            Ok(if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Muster { logs, ids, out } => {
            super::aws_commands::muster(&config, logs, *ids, out.as_ref()).await
        }
        Command::Account {
            id,
            logs,
            output,
            from,
            until,
        } => {
            let period = match (from, until) {
                (Some(f), Some(u)) => Period::Fixed(window(*f, *u)?),
                _ => Period::Scheduled,
            };
            super::aws_commands::account(cli, &config, id, logs, output, period).await
        }
        Command::Tables => super::aws_commands::tables(&config).await,
        Command::Rules { action } => super::rules::run(&config, &cli.state, action).await,
        Command::Scan {
            logs,
            accounts,
            from,
            until,
            format,
        } => {
            let period = match (from, until) {
                (Some(f), Some(u)) => Some(window(*f, *u)?),
                _ => None,
            };
            super::scan::run(cli, logs, accounts, period, *format).await
        }
        Command::Baseline => {
            if config.store.kind != trailhound::config::StoreKind::Sqlite {
                bail!("`baseline` shows the SQLite state file; with [store] kind = \"dynamodb\" look at the table in the AWS console");
            }
            let store = parts::open_sqlite(&cli.state)?;
            let s = store.stats().await?;
            println!("state file:  {}", cli.state.display());
            println!("accounts:    {}", s.accounts);
            println!("principals:  {}", s.principals);
            println!("behaviours:  {} ({} expired)", s.pairs, s.pairs_expired);
            println!(
                "findings:    {} ({} pending, {} delivered)",
                s.findings, s.findings_pending, s.findings_delivered
            );
            for sink in &s.sinks {
                println!(
                    "  sink {}: {} pending, {} delivered",
                    sink.sink, sink.pending, sink.delivered
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            keep,
            seed,
            days,
            end,
            generate_only,
            output,
        } => {
            let end = if end == "now" {
                Timestamp::now().floor_to(Span::hours(1))
            } else {
                Timestamp::parse(end)
                    .context("--end must be a time like 2026-11-02T15:00:00Z, or now")?
            };
            match keep {
                Some(dir) if *generate_only => super::demo::generate_only(dir, *seed, *days, end),
                _ => {
                    super::demo::run(cli, &config, keep.as_deref(), *seed, *days, end, output).await
                }
            }
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn window(from: Timestamp, until: Timestamp) -> Result<Window> {
    Window::new(from, until)
        .with_context(|| format!("--from {from} must be before --until {until}"))
}

/// A run over the configured accounts, source and store.
pub async fn run(
    cli: &Cli,
    config: &Arc<Config>,
    logs: &LogsArgs,
    period: Period,
    mode: Mode,
    output: &OutputArgs,
) -> Result<RunResult> {
    let store = parts::store(&cli.state, config).await?;
    let rules = parts::rules(config)?;
    let (source, progress) = parts::source(cli.quiet, config, logs, &rules).await?;
    let accounts = parts::accounts(config, logs, Some(source.clone())).await?;
    let accounts: Vec<AccountId> = accounts.into_iter().map(|a| a.id).collect();
    let sinks = if mode == Mode::Learn {
        Vec::new()
    } else {
        parts::sinks(output, config).await?
    };
    let concurrency = logs.concurrency.unwrap_or(config.muster.concurrency);
    let run = Run {
        store,
        source,
        progress,
        concurrency,
        rules,
    };
    run_with(cli, config, &run, accounts, period, mode, &sinks).await
}

/// The parts of a run, built once.
pub struct Run {
    pub store: Arc<dyn BaselineStore>,
    pub source: Arc<dyn ActivitySource>,
    pub progress: Option<indicatif::ProgressBar>,
    pub concurrency: usize,
    pub rules: Arc<RuleSet>,
}

pub async fn run_with(
    cli: &Cli,
    config: &Arc<Config>,
    run: &Run,
    accounts: Vec<AccountId>,
    period: Period,
    mode: Mode,
    sinks: &[Box<dyn Sink>],
) -> Result<RunResult> {
    let hunter = Hunter {
        config: config.clone(),
        store: run.store.clone(),
        source: run.source.clone(),
        sinks: sinks.iter().map(|s| s.name()).collect(),
        now: Timestamp::now(),
        rules: run.rules.clone(),
    };
    let result = muster::run(&hunter, accounts, period, mode, run.concurrency, sinks).await?;
    if let Some(bar) = &run.progress {
        bar.finish_and_clear();
    }
    if !cli.quiet {
        eprint!("{}", result.summary.render());
    }
    for (sink, reason) in &result.sink_failures {
        eprintln!("trailhound: delivery to {sink} failed, its findings stay pending (run `trailhound deliver`): {reason}");
    }
    Ok(result)
}

pub fn exit_code(result: &RunResult, output: &OutputArgs) -> ExitCode {
    if result.failed() {
        return ExitCode::from(2);
    }
    let fail = output.fail_on.is_some_and(|level| {
        result
            .findings
            .iter()
            .any(|f: &Finding| f.severity.level >= level)
    });
    if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
