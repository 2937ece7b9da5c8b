//! The two commands a Step Functions Distributed Map runs: `muster` lists the accounts (the
//! Map's items), and `account --id` hunts one of them (each Map task).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use trailhound::cloudtrail::AccountId;
use trailhound::config::{AccountSource, Config};
use trailhound::detect::Mode;
use trailhound::hunt::Period;
use trailhound::muster::list::{self, ListOut};
use trailhound::source::athena::ensure_tables;

use super::commands::{exit_code, run_with, Run};
use super::parts;
use super::{Cli, LogsArgs, OutputArgs};

/// `trailhound muster`: the accounts as one JSON array, on stdout or where `--out` says.
pub async fn muster(
    config: &Config,
    logs: &LogsArgs,
    ids: bool,
    out: Option<&ListOut>,
) -> Result<ExitCode> {
    // Listing the accounts of a folder reads no object: no progress bar.
    let source = if config.muster.accounts_from == AccountSource::Folder {
        // Listing accounts runs no rule.
        let no_rules = trailhound::detect::rules::RuleSet::default();
        Some(parts::source(true, config, logs, &no_rules).await?.0)
    } else {
        None
    };
    let accounts = parts::accounts(config, logs, source).await?;
    let body = list::render(&accounts, ids);
    match out {
        None | Some(ListOut::Stdout) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&body).and_then(|()| stdout.flush()) {
                // A reader that stopped reading (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("writing the account list to stdout");
                }
                _ => {}
            }
        }
        Some(ListOut::File(path)) => {
            list::write_file(path, &body)?;
            tracing::info!(accounts = accounts.len(), to = %path.display(), "wrote the account list");
        }
        Some(ListOut::S3(target)) => {
            let sdk = trailhound::aws::load().await;
            list::put_s3(&trailhound::aws::s3(&sdk), target, body).await?;
            tracing::info!(accounts = accounts.len(), to = %target, "wrote the account list");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `trailhound account --id`: hunts one account with the configured source, store and sinks.
pub async fn account(
    cli: &Cli,
    config: &Arc<Config>,
    id: &str,
    logs: &LogsArgs,
    output: &OutputArgs,
    period: Period,
) -> Result<ExitCode> {
    let account = AccountId::parse(id).context("--id")?;
    let store = parts::store(&cli.state, config).await?;
    let rules = parts::rules(config)?;
    let (source, progress) = parts::source(cli.quiet, config, logs, &rules).await?;
    let sinks = super::parts::sinks(output, config).await?;
    let run = Run {
        store,
        source,
        progress,
        concurrency: 1,
        rules,
    };
    let result = run_with(cli, config, &run, vec![account], period, Mode::Hunt, &sinks).await?;
    Ok(exit_code(&result, output))
}

/// `trailhound tables`: the Athena database and table, created or brought up to date.
pub async fn tables(config: &Config) -> Result<ExitCode> {
    let sdk = trailhound::aws::load().await;
    let report = ensure_tables(
        trailhound::aws::athena(&sdk),
        &config.trail,
        &config.athena,
        None,
    )
    .await
    .context("creating the Athena database and table of [athena]")?;
    for statement in &report.statements {
        println!("ran {statement}");
    }
    println!(
        "{}.{} is ready ({} statements, {} bytes scanned)",
        config.athena.database,
        config.athena.table,
        report.statements.len(),
        report.counters.bytes_scanned
    );
    Ok(ExitCode::SUCCESS)
}
