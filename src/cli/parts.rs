//! The parts a run is made of, as the config file and the flags choose them: the state store
//! (`[store]`), the activity source (`[source]`), the accounts (`[muster]`) and where findings
//! go (`[sinks]` and the output flags).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::baseline::BaselineStore;
use trailhound::cloudtrail::AccountId;
use trailhound::config::{AccountSource, Config, SourceKind, StoreKind};
use trailhound::muster::accounts::{roster, MusterAccount};
use trailhound::source::athena::AthenaSource;
use trailhound::source::s3::S3Source;
use trailhound::source::scan::FolderSource;
use trailhound::source::ActivitySource;

use trailhound::alert::hec::token::{fetch_secret, HecToken};
use trailhound::alert::{HecSink, JsonlSink, Sink, TerminalSink};
use trailhound::config::{HecConfig, TokenSource};
use trailhound::detect::rules::{RuleEngine, RuleSet};

use super::{Format, LogsArgs, OutputArgs};

pub fn open_sqlite(path: &Path) -> Result<SqliteStore> {
    SqliteStore::open(path).with_context(|| format!("opening the state file {}", path.display()))
}

/// The store `[store] kind` names: the SQLite file of `--state`, or the DynamoDB table.
pub async fn store(state: &Path, config: &Config) -> Result<Arc<dyn BaselineStore>> {
    Ok(match config.store.kind {
        StoreKind::Sqlite => Arc::new(open_sqlite(state)?),
        StoreKind::Dynamodb => {
            let sdk = trailhound::aws::load().await;
            Arc::new(DynamoStore::new(
                trailhound::aws::dynamodb(&sdk),
                config.store.table.clone(),
            ))
        }
    })
}

/// A progress bar on stderr, when a person is watching.
fn progress_bar(quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} objects read, {elapsed} {wide_bar}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// The folder source over `logs`, with a progress bar unless `quiet`.
pub fn open_folder(
    logs: &Path,
    quiet: bool,
) -> Result<(FolderSource, Option<indicatif::ProgressBar>)> {
    if !logs.exists() {
        bail!(
            "the logs folder {} does not exist; sync your trail first (aws s3 sync s3://BUCKET/AWSLogs ./AWSLogs) or pass --logs DIR",
            logs.display()
        );
    }
    let source = FolderSource::open(logs)
        .with_context(|| format!("reading the logs folder {}", logs.display()))?;
    Ok(match progress_bar(quiet) {
        Some(bar) => (source.with_progress(bar.clone()), Some(bar)),
        None => (source, None),
    })
}

/// The rules of `[rules]`: the shipped pack and your folders, minus what `disable` names.
pub fn rules(config: &Config) -> Result<Arc<RuleSet>> {
    let r = &config.rules;
    let mut set = RuleSet::load(r.shipped, &r.folders).context("loading the rules of [rules]")?;
    let unknown = set.disable(&r.disable);
    if !unknown.is_empty() {
        bail!(
            "rules.disable names rules that do not exist: {} (see `trailhound rules list`)",
            unknown.join(", ")
        );
    }
    Ok(Arc::new(set))
}

/// The activity source `[source] kind` names, and its progress bar if it has one. Sources
/// that read the records themselves keep those `rules` want.
pub async fn source(
    quiet: bool,
    config: &Config,
    logs: &LogsArgs,
    rules: &RuleSet,
) -> Result<(Arc<dyn ActivitySource>, Option<indicatif::ProgressBar>)> {
    let engine = Arc::new(RuleEngine::new(rules));
    Ok(match config.source.kind {
        SourceKind::Folder => {
            let (source, bar) = open_folder(&logs.logs, quiet)?;
            (Arc::new(source.with_rules(engine)), bar)
        }
        SourceKind::S3 => {
            let sdk = trailhound::aws::load().await;
            let source = S3Source::new(trailhound::aws::s3(&sdk), &config.trail)
                .context("opening the CloudTrail bucket of [trail]")?;
            (Arc::new(source.with_rules(engine)), None)
        }
        SourceKind::Athena => {
            let sdk = trailhound::aws::load().await;
            let source =
                AthenaSource::new(trailhound::aws::athena(&sdk), &config.trail, &config.athena)
                    .context("setting up the Athena source of [athena] and [trail]")?
                    .with_rules(rules)
                    .context("compiling the rules of [rules] to Athena SQL")?;
            (Arc::new(source), None)
        }
    })
}

/// The accounts of `[muster]`, narrowed to `--account` when given. `source` is asked when the
/// accounts come from the logs themselves.
pub async fn accounts(
    config: &Config,
    logs: &LogsArgs,
    source: Option<Arc<dyn ActivitySource>>,
) -> Result<Vec<MusterAccount>> {
    let roster = roster(&config.muster, source)
        .await
        .context("choosing where accounts come from ([muster] accounts_from)")?;
    let mut accounts = roster.accounts().await.context("listing the accounts")?;
    if accounts.is_empty() && config.muster.accounts_from == AccountSource::Folder {
        bail!(
            "no CloudTrail logs found under {} (looked for *_CloudTrail_*.json.gz objects and JSON log files)",
            logs.logs.display()
        );
    }
    if !logs.accounts.is_empty() {
        let wanted = logs
            .accounts
            .iter()
            .map(|a| AccountId::parse(a).context("--account"))
            .collect::<Result<Vec<_>>>()?;
        if let Some(missing) = wanted
            .iter()
            .find(|w| !accounts.iter().any(|a| a.id == **w))
        {
            let from = match config.muster.accounts_from {
                AccountSource::Folder => "folder",
                AccountSource::Organizations => "organizations",
                AccountSource::Static => "static",
            };
            bail!("account {missing} is not among the accounts of [muster] (accounts_from = \"{from}\", after its filters)");
        }
        accounts.retain(|a| wanted.contains(&a.id));
    }
    Ok(accounts)
}

/// Every sink of the run: standard output as `--format` says, the `--out` file, then the
/// files and collectors of `[sinks]`. A collector whose token cannot be loaded stops the run
/// before anything is hunted: its findings would only pile up.
pub async fn sinks(output: &OutputArgs, config: &Config) -> Result<Vec<Box<dyn Sink>>> {
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let format = output.format.unwrap_or(if stdout_is_terminal {
        Format::Table
    } else {
        Format::Jsonl
    });
    let mut sinks: Vec<Box<dyn Sink>> = vec![match format {
        Format::Table => Box::new(TerminalSink::stdout(stdout_is_terminal)),
        Format::Jsonl => Box::new(JsonlSink::stdout()),
    }];
    let files = output.out.iter().chain(&config.sinks.jsonl);
    for path in files {
        let sink = JsonlSink::file(path)?;
        // `--out` naming a file `[sinks]` also lists is one sink, not two.
        if !sinks.iter().any(|s| s.name() == sink.name()) {
            sinks.push(Box::new(sink));
        }
    }
    for hec in &config.sinks.hec {
        let token = hec_token(hec)
            .await
            .with_context(|| format!("loading the token of [[sinks.hec]] {}", hec.name))?;
        sinks.push(Box::new(HecSink::new(hec, token)?));
    }
    Ok(sinks)
}

async fn hec_token(hec: &HecConfig) -> Result<HecToken> {
    let source = hec
        .token_source()
        .context("set exactly one of token_env, token_file and token_secret")?;
    if let Some(local) = HecToken::load_local(&source) {
        return Ok(local?);
    }
    let TokenSource::Secret { id, key } = source else {
        bail!("the token source is neither local nor a secret");
    };
    let sdk = trailhound::aws::load().await;
    Ok(fetch_secret(&trailhound::aws::secretsmanager(&sdk), &id, key.as_deref()).await?)
}
