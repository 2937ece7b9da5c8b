//! `trailhound demo`: a synthetic organisation with injected attacks, learned and hunted
//! exactly as real logs would be, then a note of where the injected attacks ranked.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use trailhound::alert::Finding;
use trailhound::cloudtrail::Timestamp;
use trailhound::config::Config;
use trailhound::demo::{generate, DemoManifest, DemoOptions};
use trailhound::detect::Mode;
use trailhound::hunt::Period;
use trailhound::source::ActivitySource;
use trailhound::window::Window;

use super::commands::{exit_code, run_with, Run};
use super::parts;
use super::{Cli, OutputArgs};
use trailhound::detect::rules::RuleEngine;

/// Whether a finding is about one of the injected attacks.
fn injected(manifest: &DemoManifest, f: &Finding) -> Option<&'static str> {
    manifest
        .injected
        .iter()
        .find(|a| {
            a.account == f.account
                && a.principal_key == f.principal.key
                && (f.action.as_ref().is_some_and(|x| a.actions.contains(x))
                    || f.event_ids.iter().any(|e| a.event_ids.contains(e)))
        })
        .map(|a| a.name)
}

/// Writes the demo's logs into `dir` and prints the manifest (JSON) on stdout.
pub fn generate_only(dir: &Path, seed: u64, days: u32, end: Timestamp) -> Result<ExitCode> {
    let options = DemoOptions { seed, days, end };
    let manifest = generate(dir, &options)
        .with_context(|| format!("writing the demo logs into {}", dir.display()))?;
    let text = serde_json::to_string_pretty(&manifest)?;
    writeln!(std::io::stdout().lock(), "{text}").context("writing the manifest to stdout")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(
    cli: &Cli,
    config: &Arc<Config>,
    keep: Option<&Path>,
    seed: u64,
    days: u32,
    end: Timestamp,
    output: &OutputArgs,
) -> Result<ExitCode> {
    let (dir, remove_after) = match keep {
        Some(d) => (d.to_path_buf(), false),
        None => {
            let unique = format!(
                "trailhound-demo-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            (std::env::temp_dir().join(unique), true)
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the demo folder {}", dir.display()))?;
    let result = run_in(cli, config, &dir, seed, days, end, output).await;
    if remove_after {
        let _ = std::fs::remove_dir_all(&dir);
    } else if !cli.quiet {
        eprintln!(
            "demo logs and state kept in {} (hunt them again with --logs {}/AWSLogs --state {}/trailhound.db)",
            dir.display(),
            dir.display(),
            dir.display()
        );
    }
    result
}

async fn run_in(
    cli: &Cli,
    config: &Arc<Config>,
    dir: &Path,
    seed: u64,
    days: u32,
    end: Timestamp,
    output: &OutputArgs,
) -> Result<ExitCode> {
    let options = DemoOptions { seed, days, end };
    if !cli.quiet {
        eprintln!("generating a synthetic organisation: {days} days of routine, then one hour with injected attacks ...");
    }
    let root = dir.to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || generate(&root, &options))
        .await
        .context("the demo generator stopped")?
        .context("writing the demo logs")?;
    if !cli.quiet {
        eprintln!(
            "wrote {} objects ({} records, {:.1} MB gzip) for {} accounts under {}",
            manifest.objects,
            manifest.records,
            manifest.bytes_compressed as f64 / 1e6,
            manifest.accounts.len(),
            manifest.logs_root.display()
        );
    }

    // The demo keeps its own state beside the logs, whatever --state says, so it never
    // mixes with a real baseline.
    let store = Arc::new(parts::open_sqlite(&dir.join("trailhound.db"))?);
    // The state file sits beside AWSLogs/; read only the logs.
    let (source, progress) = parts::open_folder(&manifest.logs_root.join("AWSLogs"), cli.quiet)?;
    let rules = parts::rules(config)?;
    let source = source.with_rules(Arc::new(RuleEngine::new(&rules)));
    let accounts = source.accounts().await?;
    let run = Run {
        store,
        source: Arc::new(source),
        progress,
        concurrency: 2,
        rules,
    };
    let history =
        Window::new(manifest.history.0, manifest.history.1).context("empty demo history")?;
    let hunt = Window::new(manifest.hunt.0, manifest.hunt.1).context("empty demo hunt window")?;

    if !cli.quiet {
        eprintln!("\nlearning {history} ...");
    }
    let learn = Period::Fixed(history);
    run_with(cli, config, &run, accounts.clone(), learn, Mode::Learn, &[]).await?;

    if !cli.quiet {
        eprintln!("\nhunting {hunt} ...");
    }
    let sinks = super::parts::sinks(output, config).await?;
    let period = Period::Fixed(hunt);
    let result = run_with(cli, config, &run, accounts, period, Mode::Hunt, &sinks).await?;

    if !cli.quiet {
        let ranks: Vec<(usize, &'static str)> = result
            .findings
            .iter()
            .enumerate()
            .filter_map(|(i, f)| injected(&manifest, f).map(|name| (i + 1, name)))
            .collect();
        let first_background = result
            .findings
            .iter()
            .position(|f| injected(&manifest, f).is_none());
        let mut attacks_found: Vec<&str> = ranks.iter().map(|(_, n)| *n).collect();
        attacks_found.sort();
        attacks_found.dedup();
        eprintln!(
            "\ndemo: {} findings; {} of them are the injected attacks ({} of {} attacks found); the highest background finding ranks #{}",
            result.findings.len(),
            ranks.len(),
            attacks_found.len(),
            manifest.injected.len(),
            first_background.map_or("-".to_string(), |i| (i + 1).to_string())
        );
        for attack in &manifest.injected {
            let found = ranks
                .iter()
                .filter(|(_, n)| *n == attack.name)
                .map(|(r, _)| format!("#{r}"))
                .collect::<Vec<_>>();
            eprintln!(
                "  {:<36} {}",
                attack.name,
                if found.is_empty() {
                    "NOT FOUND".to_string()
                } else {
                    format!("ranks {}", found.join(", "))
                }
            );
        }
    }
    Ok(exit_code(&result, output))
}
