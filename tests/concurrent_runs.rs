//! Two hunts of the same accounts at the same time, by two processes of the real binary on the
//! same logs, the same state (one SQLite file, or one DynamoDB table in the local emulator) and
//! the same findings file: each new behaviour is reported once. Both runs may find it; the
//! outbox keeps it once under its one id, and the two runs take turns at delivering, so the
//! file holds each finding exactly once.

mod binary_runs;
mod common;
mod delivery_check;
mod moto;

use std::process::Child;

use binary_runs::{Scheduled, Store};
use delivery_check::{ids, Comparison};

/// Starts `case` twice at once; both must succeed.
fn two_at_once(hunt: &Scheduled, case: &str) {
    let children: Vec<Child> = (0..2)
        .map(|_| hunt.command(case, None).spawn().unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{case}: a run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Compares `rounds` pairs of runs at once, each pair on fresh state, with one run alone.
fn each_finding_once(store: Store, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let hunt = Scheduled::new(dir.path(), store);
    hunt.run("alone");
    let alone = ids(&hunt.delivered("alone"));
    assert!(alone.len() > 5, "the lone run finds something: {alone:?}");
    for round in 0..rounds {
        let case = format!("together-{round}");
        two_at_once(&hunt, &case);
        Comparison::of(&alone, &hunt.delivered(&case)).assert_exactly_once(&case);
    }
    eprintln!(
        "{} rounds of two runs at once: {} findings each, each delivered once",
        rounds,
        alone.len()
    );
}

#[test]
fn two_runs_at_once_on_one_sqlite_file_deliver_each_finding_once() {
    each_finding_once(Store::Sqlite, 4);
}

#[test]
fn two_runs_at_once_on_one_dynamodb_table_deliver_each_finding_once() {
    each_finding_once(Store::Dynamodb, 2);
}
