//! `kill -9` of the real binary at arbitrary points of a hunt, then a re-run: every finding
//! of a run with no kill arrives, and none arrives under a second id.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use trailhound::alert::Finding;
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

/// Complete lines of a findings file; a line torn by the kill is not a delivery.
fn delivered(path: &Path) -> Vec<Finding> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What a finding is about, without its id: two ids for one of these would be a duplicate.
fn about(f: &Finding) -> (String, String, Option<String>, String, String) {
    (
        f.kind.name().to_string(),
        f.principal.key.clone(),
        f.action.clone(),
        f.first_seen.to_string(),
        f.account.to_string(),
    )
}

#[test]
fn kill_during_a_hunt_loses_nothing_and_never_changes_ids() {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        seed: 11,
        days: 3,
        end: Timestamp::parse("2024-03-07T00:00:00Z").unwrap(),
    };
    let manifest = generate(&dir.path().join("org"), &options).unwrap();
    let logs = manifest.logs_root.clone();

    // The reference: one uninterrupted run.
    let status = hunt(dir.path(), &logs, "clean.db", "clean.jsonl")
        .status()
        .unwrap();
    assert!(status.success());
    let clean: BTreeSet<String> = delivered(&dir.path().join("clean.jsonl"))
        .into_iter()
        .map(|f| f.id)
        .collect();
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
        let ids: BTreeSet<String> = got.iter().map(|f| f.id.clone()).collect();
        let missing: Vec<_> = clean.difference(&ids).collect();
        assert!(
            missing.is_empty(),
            "round {round} (kill after {delay_ms} ms): lost {missing:?}"
        );
        let mut ids_per_fact: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
        for f in &got {
            ids_per_fact
                .entry(about(f))
                .or_default()
                .insert(f.id.clone());
        }
        let split: Vec<_> = ids_per_fact
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .collect();
        assert!(
            split.is_empty(),
            "round {round}: findings under two ids: {split:?}"
        );
        assert_eq!(
            ids, clean,
            "round {round}: the same findings as a run with no kill"
        );
    }
}
