//! `kill -9` of the real binary during a hunt, then a re-run: every finding of a run with no
//! kill arrives, and none arrives under a second id.
//!
//! Two ways to pick the moment: at arbitrary delays (a replay of a fixed period), and at each
//! named stage of a scheduled hunt, which the binary reaches and then holds
//! (`TRAILHOUND_STOP_AT`, see `baseline::stop`) until the test kills it: after the query,
//! after detection, after staging, inside the commit, and during delivery (a sink took
//! findings the outbox has not marked), each at its first and a later arrival, on the SQLite
//! store and on the DynamoDB store in the local AWS emulator.

mod binary_runs;
mod common;
mod delivery_check;
mod moto;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use binary_runs::{Scheduled, Store};
use delivery_check::{delivered, ids, Comparison};
use trailhound::cloudtrail::Timestamp;
use trailhound::demo::{generate, DemoOptions};

fn hunt(dir: &Path, logs: &Path, state: &str, out: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    cmd.current_dir(dir)
        .args(["-q", "--state", state, "hunt", "--logs"])
        .arg(logs)
        .args([
            "--from",
            "2024-03-04T00:00:00Z",
            "--until",
            "2024-03-07T00:00:00Z",
        ])
        .args(["--format", "jsonl", "--out", out])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn kill_during_a_hunt_loses_nothing_and_never_changes_ids() {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        seed: 11,
        // One day of history: runs of a second or two, which the delays below cut anywhere.
        days: 1,
        end: Timestamp::parse("2024-03-07T00:00:00Z").unwrap(),
    };
    let manifest = generate(&dir.path().join("org"), &options).unwrap();
    let logs = manifest.logs_root.clone();

    // The reference: one uninterrupted run.
    let status = hunt(dir.path(), &logs, "clean.db", "clean.jsonl")
        .status()
        .unwrap();
    assert!(status.success());
    let clean = ids(&delivered(&dir.path().join("clean.jsonl")));
    assert!(
        clean.len() > 10,
        "the reference run finds something to compare: {}",
        clean.len()
    );

    // Kill at increasing delays, each time on the same state, then finish.
    for (round, delay_ms) in [5u64, 20, 60, 120, 250, 400, 700, 1000]
        .into_iter()
        .enumerate()
    {
        let state = format!("killed-{round}.db");
        let out = format!("killed-{round}.jsonl");
        for kill_after in [delay_ms, delay_ms / 2 + 1] {
            let mut child = hunt(dir.path(), &logs, &state, &out).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(kill_after));
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
        let status = hunt(dir.path(), &logs, &state, &out).status().unwrap();
        assert!(status.success(), "round {round}: the re-run completes");
        let got = delivered(&dir.path().join(&out));
        let case = format!("round {round} (kill after {delay_ms} ms)");
        Comparison::of(&clean, &got).assert_complete(&case);
    }
}

/// The stages a scheduled hunt is stopped at (see `baseline::stop`).
const STAGES: [&str; 5] = [
    "activity-read",
    "detected",
    "staged",
    "commit",
    "delivering",
];

/// Kills a hunt at each stage (at its first arrival, and `and_later` at a later one too),
/// re-runs it, and compares with a run that was never killed. Returns the stages tested and the repeats the re-runs delivered.
fn every_stage(hunt: &Scheduled, and_later: bool) -> (usize, usize) {
    hunt.run("clean");
    let clean: BTreeSet<String> = ids(&hunt.delivered("clean"));
    assert!(
        clean.len() > 5,
        "the reference run finds something to compare: {}",
        clean.len()
    );
    let (mut tested, mut repeats) = (0, 0);
    for stage in STAGES {
        // The first arrival, and one further on: a later window, or (delivery) the second sink,
        // the findings file, whose deliveries the test sees (the first is standard output).
        let later = if stage == "delivering" { 2 } else { 4 };
        let arrivals = match (and_later, stage) {
            (true, _) => vec![1, later],
            (false, "delivering") => vec![later],
            (false, _) => vec![1],
        };
        for n in arrivals {
            let case = format!("{stage}-{n}");
            let stop = format!("{stage}@{n}");
            assert!(
                hunt.kill_at(&case, &stop),
                "{case}: the hunt never reached {stop}"
            );
            hunt.run(&case);
            let comparison = Comparison::of(&clean, &hunt.delivered(&case));
            comparison.assert_complete(&case);
            eprintln!("{case}: {} delivered again", comparison.repeated.len());
            tested += 1;
            repeats += comparison.repeated.len();
        }
    }
    (tested, repeats)
}

#[test]
fn kill_at_every_stage_of_a_scheduled_hunt_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let hunt = Scheduled::new(dir.path(), Store::Sqlite);
    let (tested, repeats) = every_stage(&hunt, true);
    eprintln!(
        "sqlite: {tested} crash points, 0 findings lost, 0 under two ids, {repeats} delivered again"
    );
}

#[test]
fn kill_at_every_stage_of_a_scheduled_hunt_loses_nothing_on_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    // Each run of the binary on the emulator takes seconds: the first arrival at each stage.
    let hunt = Scheduled::new(dir.path(), Store::Dynamodb);
    let (tested, repeats) = every_stage(&hunt, false);
    eprintln!(
        "dynamodb: {tested} crash points, 0 findings lost, 0 under two ids, {repeats} delivered again"
    );
}
