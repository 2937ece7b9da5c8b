//! `trailhound rules`: list what runs, check rule files, import Elasticsearch-era rules from a
//! file or their DynamoDB table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Map, Value};

use trailhound::cloudtrail::{AccountId, Timestamp};
use trailhound::config::Config;
use trailhound::detect::rule_findings::imported_memory;
use trailhound::detect::rule_state::RuleState;
use trailhound::detect::rules::{RuleKind, RuleSet};
use trailhound::detect::rules_import::{import, render_file, ImportReport};

use super::parts;
use super::RulesCommand;

pub async fn run(config: &Config, state: &Path, action: &RulesCommand) -> Result<ExitCode> {
    match action {
        RulesCommand::List => list(config),
        RulesCommand::Check { paths } => check(paths),
        RulesCommand::Import {
            file,
            table,
            out,
            seed_state,
        } => {
            let accounts = seed_state
                .iter()
                .map(|a| AccountId::parse(a).map_err(|e| anyhow::anyhow!("--seed-state {a}: {e}")))
                .collect::<Result<Vec<_>>>()?;
            let text = match (file, table) {
                (Some(path), None) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, Some(table)) => scan_table(table).await?,
                _ => bail!("give a FILE or --table NAME"),
            };
            let (code, report) = import_into(&text, out)?;
            if !accounts.is_empty() {
                seed(config, state, &report, &accounts).await?;
            }
            Ok(code)
        }
        RulesCommand::State { account } => {
            let account = AccountId::parse(account)
                .map_err(|e| anyhow::anyhow!("--account {account}: {e}"))?;
            show_state(config, state, &account).await
        }
    }
}

/// Stores the imported rules' memory for each account, with the rules as they were written.
async fn seed(
    config: &Config,
    state: &Path,
    report: &ImportReport,
    accounts: &[AccountId],
) -> Result<()> {
    let store = parts::store(state, config).await?;
    let written: Vec<(&str, &str)> = report
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.toml.as_str()))
        .collect();
    let rules = RuleSet::from_texts(written)?;
    let now = Timestamp::now();
    for imported in &report.rules {
        let (Some(memory), Some(rule)) = (&imported.state, rules.get(&imported.id)) else {
            continue;
        };
        let (commit, expired) = imported_memory(rule, memory, now);
        for account in accounts {
            store.commit(account, &commit).await?;
        }
        eprintln!(
            "{}: state stored for {} accounts: last run {}, {} keys remembered, {} keys already past their history",
            imported.id,
            accounts.len(),
            memory
                .last_run
                .map_or("never".to_string(), |t| Timestamp::from_unix(t).to_string()),
            commit.pairs.len(),
            expired
        );
    }
    Ok(())
}

async fn show_state(config: &Config, state: &Path, account: &AccountId) -> Result<ExitCode> {
    let rules = parts::rules(config)?;
    let store = parts::store(state, config).await?;
    let ids: Vec<String> = rules.rules().iter().map(|r| r.id.clone()).collect();
    let states = store.rule_states(account, &ids).await?;
    for id in &ids {
        let Some(text) = states.get(id) else {
            continue;
        };
        match RuleState::parse(text) {
            Ok(s) => {
                let time = |t: Option<Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
                println!(
                    "{id:<42} last run {:<20} through {:<20} carried groups {:<5} fired: {}",
                    time(s.last_run),
                    time(s.through),
                    s.groups.len(),
                    s.last_keys
                        .iter()
                        .map(|(k, t)| format!("{k} ({t})"))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
            Err(e) => println!("{id:<42} unreadable state: {e}"),
        }
    }
    eprintln!(
        "{} of {} rules have state for {account}",
        states.len(),
        ids.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(config: &Config) -> Result<ExitCode> {
    let rules = parts::rules(config)?;
    for rule in rules.rules() {
        let kind = match &rule.kind {
            RuleKind::Match { .. } => "match",
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Cardinality { .. } => "cardinality",
            RuleKind::NewTerms { .. } => "new_terms",
        };
        println!(
            "{:<42} {:<11} {:<13} {:<4} {}",
            rule.id,
            kind,
            rule.severity.name(),
            if rule.enabled { "on" } else { "off" },
            rule.title
        );
    }
    let on = rules.enabled().count();
    eprintln!("{} rules, {on} enabled", rules.len());
    Ok(ExitCode::SUCCESS)
}

fn check(paths: &[PathBuf]) -> Result<ExitCode> {
    let mut texts = Vec::new();
    for path in paths {
        if path.is_dir() {
            let set = RuleSet::load_dir(path)?;
            println!("{}: {} rules, all valid", path.display(), set.len());
        } else {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            texts.push((path.display().to_string(), text));
        }
    }
    if !texts.is_empty() {
        let set = RuleSet::from_texts(texts.iter().map(|(p, t)| (p.as_str(), t.as_str())))?;
        println!("{} files: {} rules, all valid", texts.len(), set.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn import_into(text: &str, out: &Path) -> Result<(ExitCode, ImportReport)> {
    let report = import(text).context("reading the rules to import")?;
    for failure in &report.failures {
        eprintln!(
            "not converted: {} at {}: {}",
            failure.rule_id, failure.position, failure.reason
        );
    }
    for rule in &report.rules {
        for note in &rule.notes {
            eprintln!("note: {}: {note}", rule.id);
        }
    }
    if report.rules.is_empty() {
        bail!(
            "none of the {} rules could be converted; nothing written",
            report.failures.len()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(out, render_file(&report))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} rules to {} ({} not converted); list its folder in [rules] folders",
        report.rules.len(),
        out.display(),
        report.failures.len()
    );
    let code = if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    };
    Ok((code, report))
}

/// The table's items in `aws dynamodb scan` form, every page.
async fn scan_table(table: &str) -> Result<String> {
    let sdk = trailhound::aws::load().await;
    let client = trailhound::aws::dynamodb(&sdk);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "scanning the DynamoDB table {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        for item in page.items() {
            let map: Map<String, Value> = item.iter().map(|(k, v)| (k.clone(), typed(v))).collect();
            items.push(Value::Object(map));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    Ok(json!({ "Items": items }).to_string())
}

/// An attribute in DynamoDB's typed JSON (`{"S": "..."}`), as the importer reads it.
fn typed(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::L(list) => json!({ "L": list.iter().map(typed).collect::<Vec<_>>() }),
        AttributeValue::M(map) => {
            let inner: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), typed(v))).collect();
            json!({ "M": inner })
        }
        // Binary values cannot hold a rule's text; the importer names the attribute.
        _ => json!({ "B": "(binary)" }),
    }
}
