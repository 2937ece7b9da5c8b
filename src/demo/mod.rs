//! `trailhound demo`: a synthetic AWS Organization's CloudTrail, written to a folder in the
//! real S3 layout, with weeks of routine history and one hour holding injected attacks.
//!
//! The output depends only on [`DemoOptions`]: the same seed, days and end give the same bytes.
//! The [`DemoManifest`] says where everything is and which attacks a hunt should find.
//!
//! Parts: `org` (who exists), `routine/` (what they do every day), `attacks` and `novelty`
//! (what the hunt hour adds), `event`/`identity`/`agents`/`params` (how a call is recorded),
//! `deliver` (which object an event lands in), `write` (the files), `rng` (the randomness).

mod agents;
mod attacks;
mod deliver;
mod event;
mod identity;
mod json;
mod novelty;
mod org;
mod params;
mod rng;
mod routine;
mod write;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cloudtrail::{AccountId, Action, Principal, Record, Span, Timestamp};

use event::{Event, Kind};

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub seed: u64,
    /// Days of routine history before the hunt hour (default [`DemoOptions::DEFAULT_DAYS`]).
    pub days: u32,
    /// End of the attack hour. Rounded down to the minute.
    pub end: Timestamp,
}

impl DemoOptions {
    pub const DEFAULT_DAYS: u32 = 14;
    /// The generator holds every event in memory (about 10 MB per day of history).
    pub const MAX_DAYS: u32 = 60;

    /// The default history for `seed`, ending at `end`.
    pub fn new(seed: u64, end: Timestamp) -> Self {
        DemoOptions {
            seed,
            days: Self::DEFAULT_DAYS,
            end,
        }
    }
}

/// What was generated, and what a hunt over it should find.
#[derive(Clone, Debug, Serialize)]
pub struct DemoManifest {
    /// The folder containing `AWSLogs/`.
    pub logs_root: PathBuf,
    /// Management (security), production and development, in that order.
    pub accounts: Vec<AccountId>,
    /// Delivery-time period of the routine history: `[end - 1h - days, end - 1h)`.
    pub history: (Timestamp, Timestamp),
    /// Delivery-time period of the attack hour: `[end - 1h, end)`.
    pub hunt: (Timestamp, Timestamp),
    pub injected: Vec<InjectedAttack>,
    /// Log objects written (digests not counted).
    pub objects: u64,
    /// Records in the log objects, counting an event delivered twice twice.
    pub records: u64,
    /// Size of the log objects on disk.
    pub bytes_compressed: u64,
}

/// One injected attack: everything in it was done by one principal in one account.
#[derive(Clone, Debug, Serialize)]
pub struct InjectedAttack {
    pub name: &'static str,
    pub description: String,
    pub account: AccountId,
    /// Exactly the key [`Principal::of`] gives for its records.
    pub principal_key: String,
    /// Distinct actions in the order first made, short form (`iam:CreateAccessKey`).
    pub actions: Vec<String>,
    /// Its records' eventIDs, in time order.
    pub event_ids: Vec<String>,
}

/// How many hourly digests each account and region gets before the end.
const DIGEST_HOURS: i64 = 4;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Generates the organisation's logs under `root` (created if missing).
pub fn generate(root: &Path, opts: &DemoOptions) -> io::Result<DemoManifest> {
    if opts.days == 0 || opts.days > DemoOptions::MAX_DAYS {
        return Err(invalid(format!(
            "the demo's history must be 1 to {} days, got {}",
            DemoOptions::MAX_DAYS,
            opts.days
        )));
    }
    let end = opts.end.floor_to(Span::minutes(1));
    let hunt_start = end.saturating_sub(Span::hours(1));
    let history_start = hunt_start.saturating_sub(Span::days(i64::from(opts.days)));
    let org = org::Org::build(opts.seed)?;

    // Routine starts early enough that the first objects of the history hold late events too.
    let mut events = routine::generate(
        &org,
        opts.seed,
        history_start.saturating_sub(Span::hours(3)),
        end,
    );
    let (planned, attack_events) = attacks::inject(&org, opts.seed, hunt_start, end);
    events.extend(novelty::generate(&org, opts.seed, hunt_start, end));
    events.extend(attack_events);
    events.sort_by(|a, b| {
        (a.account, a.region, a.time, &a.id).cmp(&(b.account, b.region, b.time, &b.id))
    });

    let mut deliveries = deliver::assign(&events, opts.seed, history_start, end);
    deliver::keep_known_in_hunt(&mut deliveries, &events, &org, hunt_start);
    let objects = deliver::objects(deliveries, &events, opts.seed);

    std::fs::create_dir_all(root)?;
    let digests_from = end
        .floor_to(Span::hours(1))
        .saturating_sub(Span::hours(DIGEST_HOURS));
    let (totals, logs) = write::objects(root, &org, &objects, &events, digests_from)?;
    write::digests(root, &org, &logs, opts.seed, DIGEST_HOURS, end)?;

    let injected = planned
        .into_iter()
        .enumerate()
        .map(|(n, p)| manifest_entry(&org, &events, n, p))
        .collect::<io::Result<Vec<_>>>()?;
    Ok(DemoManifest {
        logs_root: root.to_path_buf(),
        accounts: org.accounts.iter().map(|a| a.id.clone()).collect(),
        history: (history_start, hunt_start),
        hunt: (hunt_start, end),
        injected,
        objects: totals.objects,
        records: totals.records,
        bytes_compressed: totals.bytes_compressed,
    })
}

/// Reads an attack's records back the way the hunt will, so the manifest says what the
/// product sees rather than what the generator meant.
fn manifest_entry(
    org: &org::Org,
    events: &[Event],
    n: usize,
    p: attacks::Planned,
) -> io::Result<InjectedAttack> {
    let broken = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("demo attack {}: {what}", p.name),
        )
    };
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == Kind::Attack(n))
        .collect();
    mine.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    let account = org.accounts[p.account].id.clone();
    let mut key: Option<String> = None;
    let mut actions: Vec<String> = Vec::new();
    for e in &mine {
        let record =
            Record::parse(&e.json).map_err(|r| broken(format!("record does not parse: {r}")))?;
        let principal =
            Principal::of(&record, account.as_str()).map_err(|r| broken(r.reason().to_string()))?;
        match &key {
            Some(k) if *k != principal.key => {
                return Err(broken(format!(
                    "mixes principals {k} and {}",
                    principal.key
                )));
            }
            Some(_) => {}
            None => key = Some(principal.key),
        }
        let action = Action::new(&record.event_source, &record.event_name).short();
        if !actions.contains(&action) {
            actions.push(action);
        }
    }
    Ok(InjectedAttack {
        name: p.name,
        description: p.description,
        account,
        principal_key: key.ok_or_else(|| broken("has no records".into()))?,
        actions,
        event_ids: mine.iter().map(|e| e.id.clone()).collect(),
    })
}
