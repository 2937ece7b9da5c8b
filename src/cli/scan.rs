//! `trailhound scan`: the distinct activity of a folder of logs, every account and all time
//! (or a period), with no baseline and no findings. For an incident responder it answers "who
//! did what, how often, from where" over a copy of the trail; for the benchmarks it is the scan
//! alone, measured against other tools producing the same rows.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use std::path::Path;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde::Serialize;

use trailhound::cloudtrail::{AccountId, Action, Outcome, Timestamp};
use trailhound::muster::RunSummary;
use trailhound::source::scan::FolderSource;
use trailhound::source::{Activity, ActivitySource, ScanReport};
use trailhound::window::Window;

use super::parts;
use super::Cli;

#[derive(Copy, Clone, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum RowFormat {
    /// One line per row: account, principal, its type and ARN, action, outcome, count, first
    /// and last eventTime.
    Csv,
    /// One JSON object per row, with the samples (regions, IPs, user agents, error codes,
    /// event ids) as well.
    Jsonl,
}

/// All time, when no period is given: delivery times before 1970 or after 9999 are not real.
fn all_time() -> Window {
    Window {
        start: Timestamp::from_unix(0),
        end: Timestamp::from_unix(253_402_300_800),
    }
}

#[derive(Serialize)]
struct JsonRow<'a> {
    account: &'a AccountId,
    #[serde(flatten)]
    activity: &'a Activity,
}

/// The folder's accounts, or those of `--account` (each must be in the folder).
async fn chosen(source: &FolderSource, wanted: &[String]) -> Result<Vec<AccountId>> {
    let found = source.accounts().await?;
    if found.is_empty() {
        bail!(
            "no CloudTrail logs found under {} (looked for *_CloudTrail_*.json.gz objects and JSON log files)",
            source.root().display()
        );
    }
    if wanted.is_empty() {
        return Ok(found);
    }
    let mut chosen = Vec::new();
    for text in wanted {
        let id = AccountId::parse(text).context("--account")?;
        if !found.contains(&id) {
            bail!("account {id} has no logs under {}", source.root().display());
        }
        chosen.push(id);
    }
    Ok(chosen)
}

pub async fn run(
    cli: &Cli,
    logs: &Path,
    accounts: &[String],
    period: Option<Window>,
    format: RowFormat,
) -> Result<ExitCode> {
    let started = Instant::now();
    let (source, progress) = parts::open_folder(logs, cli.quiet)?;
    let accounts = chosen(&source, accounts).await?;
    let period = period.unwrap_or_else(all_time);

    // Rows of one account are merged across its windows; accounts come out one after another.
    let mut report = ScanReport::default();
    let mut windows = 0u64;
    let mut principals = 0usize;
    let mut out = match format {
        RowFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(CSV_HEADER)?;
            Rows::Csv(Box::new(w))
        }
        RowFormat::Jsonl => Rows::Jsonl(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // Two windows are read at once, so the one-thread parts of a window (listing its folders,
    // merging what its workers found) overlap the other window's reading. Batches come back
    // in order, and the rows of one account are merged across its windows before they are
    // written.
    let jobs: Vec<(&AccountId, Window)> = accounts
        .iter()
        .flat_map(|account| {
            source
                .read_windows(account, period)
                .into_iter()
                .map(move |window| (account, window))
        })
        .collect();
    let source = &source;
    let mut batches = futures::stream::iter(jobs)
        .map(|(account, window)| async move {
            source
                .activity(account, &window)
                .await
                .with_context(|| format!("scanning account {account} in {window}"))
        })
        .buffered(WINDOWS_IN_FLIGHT);
    let mut rows = AccountRows::default();
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        windows += 1;
        report.merge(batch.report);
        if rows.account.as_ref() != Some(&batch.account) {
            principals += rows.write(&mut out)?;
            rows.account = Some(batch.account.clone());
        }
        rows.add(batch.rows);
    }
    principals += rows.write(&mut out)?;
    out.flush().context("writing rows to stdout")?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if !cli.quiet {
        let summary = RunSummary {
            accounts_hunted: accounts.len() as u64,
            windows,
            report,
            principals: principals as u64,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            ..RunSummary::default()
        };
        eprint!("{}", summary.render_reading());
        eprintln!("principals: {}", summary.principals);
    }
    Ok(ExitCode::SUCCESS)
}

/// Windows read at the same time.
const WINDOWS_IN_FLIGHT: usize = 2;

/// The rows of one account, merged across its windows.
#[derive(Default)]
struct AccountRows {
    account: Option<AccountId>,
    rows: BTreeMap<(String, Action, Outcome), Activity>,
}

impl AccountRows {
    fn add(&mut self, batch: Vec<Activity>) {
        for row in batch {
            let key = (row.principal.key.clone(), row.action.clone(), row.outcome);
            match self.rows.get_mut(&key) {
                Some(kept) => kept.merge(row),
                None => {
                    self.rows.insert(key, row);
                }
            }
        }
    }

    /// Writes the rows and empties the set; the number of distinct principals written.
    fn write<W: Write>(&mut self, out: &mut Rows<W>) -> Result<usize> {
        let rows = std::mem::take(&mut self.rows);
        let Some(account) = self.account.take() else {
            return Ok(0);
        };
        let principals = rows
            .keys()
            .map(|(p, _, _)| p)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        for row in rows.values() {
            out.write(&account, row)?;
        }
        Ok(principals)
    }
}

const CSV_HEADER: [&str; 10] = [
    "account",
    "principal",
    "principal_type",
    "principal_arn",
    "event_source",
    "event_name",
    "outcome",
    "count",
    "first_time",
    "last_time",
];

enum Rows<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(std::io::BufWriter<W>),
}

impl<W: Write> Rows<W> {
    fn write(&mut self, account: &AccountId, row: &Activity) -> Result<()> {
        match self {
            Rows::Csv(w) => w.write_record([
                account.as_str(),
                &row.principal.key,
                row.principal.kind.name(),
                row.principal.arn.as_deref().unwrap_or(""),
                &row.action.source,
                &row.action.name,
                row.outcome.name(),
                &row.count.to_string(),
                &row.first_time.to_string(),
                &row.last_time.to_string(),
            ])?,
            Rows::Jsonl(w) => {
                serde_json::to_writer(
                    &mut *w,
                    &JsonRow {
                        account,
                        activity: row,
                    },
                )?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Rows::Csv(w) => w.flush(),
            Rows::Jsonl(w) => w.flush(),
        }
    }
}
