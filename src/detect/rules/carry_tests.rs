//! What rules keep between hunt windows: bursts across a window's end, bursts reported once,
//! schedules that defer without losing records, and the size limit.

use serde_json::{json, Value};

use super::eval_tests::{record, THRESHOLD};
use super::{RuleEngine, RuleOutput, RuleRun, RuleSet, SavedGroup};
use crate::cloudtrail::Timestamp;

const BASE: i64 = 1_688_990_400; // 2023-07-10T12:00:00Z, a window boundary below

fn at(seconds: i64) -> String {
    Timestamp::from_unix(BASE + seconds).to_string()
}

/// A failed console sign-in of `user` from `ip`, `second`s after BASE.
fn failure(second: i64, user: &str, ip: &str) -> Value {
    let id = format!("{user}-{second}-{ip}");
    let mut r = record("ConsoleLogin", &at(second), &id, user);
    r["sourceIPAddress"] = json!(ip);
    r
}

const CARDINALITY: &str = r#"
[[rule]]
id = "c"
title = "C"
severity = "high"
kind = "cardinality"
window = "10m"
field = "sourceIPAddress"
min_distinct = 3
when = { field = "eventName", equals = "ConsoleLogin" }
"#;

/// One hunt window ending at `end` (seconds from BASE): resumes `saved`, observes `records`,
/// evaluates when `due`, and returns what fired and what the rule keeps.
fn window(
    rules: &str,
    saved: Vec<SavedGroup>,
    records: &[Value],
    end: i64,
    due: bool,
    max_bytes: usize,
) -> (RuleOutput, RuleRun) {
    let set = RuleSet::parse(rules, "test.toml").unwrap();
    let mut engine = RuleEngine::new(&set);
    let id = set.enabled().next().unwrap().id.clone();
    engine.resume(&id, saved);
    records.iter().for_each(|r| engine.observe(r));
    let (out, mut runs) =
        engine.finish_scheduled(&|_| due, Timestamp::from_unix(BASE + end), max_bytes);
    (out, runs.remove(0))
}

#[test]
fn a_burst_across_the_end_of_a_window_is_found_in_the_next_one() {
    // Two failures before the window ends at 0, two after: no window holds four on its own.
    let first = [failure(-100, "alice", "a"), failure(-50, "alice", "a")];
    let second = [failure(30, "alice", "a"), failure(60, "alice", "a")];
    let (out, run) = window(THRESHOLD, Vec::new(), &first, 0, true, usize::MAX);
    assert!(out.hits.is_empty());
    assert_eq!(run.saved.len(), 1);
    assert_eq!(run.saved[0].count, 2);

    let (alone, _) = window(THRESHOLD, Vec::new(), &second, 3600, true, usize::MAX);
    assert!(
        alone.hits.is_empty(),
        "without the tail the burst is missed"
    );
    let (out, _) = window(THRESHOLD, run.saved, &second, 3600, true, usize::MAX);
    assert_eq!(out.hits.len(), 1);
    let peak = out.hits[0].peak.as_ref().unwrap();
    assert_eq!((peak.count, peak.first.to_string()), (4, at(-100)));
}

#[test]
fn a_reported_burst_is_not_reported_again_by_its_tail() {
    // Fires at -280..-100; the record at -10 comes after the finding and is kept alone.
    let burst: Vec<Value> = [-280, -250, -200, -100, -10]
        .iter()
        .map(|s| failure(*s, "bob", "b"))
        .collect();
    let (out, run) = window(THRESHOLD, Vec::new(), &burst, 0, true, usize::MAX);
    assert_eq!(out.hits.len(), 1);
    assert_eq!(run.fired.len(), 1);
    assert_eq!(
        run.fired[0].1.to_string(),
        at(-10),
        "the densest interval ends last"
    );
    assert!(
        run.saved.is_empty(),
        "everything up to the finding's last record is dropped"
    );

    let burst: Vec<Value> = [-1500, -1450, -1400, -1350, -100]
        .iter()
        .map(|s| failure(*s, "bob", "b"))
        .collect();
    let (out, run) = window(THRESHOLD, Vec::new(), &burst, 0, true, usize::MAX);
    assert_eq!(out.hits.len(), 1);
    assert_eq!(run.saved.len(), 1);
    assert_eq!(
        run.saved[0].count, 1,
        "only the record after the finding is kept"
    );
    let (next, _) = window(
        THRESHOLD,
        run.saved,
        &[failure(10, "bob", "b")],
        3600,
        true,
        usize::MAX,
    );
    assert!(next.hits.is_empty());
}

#[test]
fn records_too_old_to_join_a_later_burst_are_not_kept() {
    // 5 minutes of window plus 20 of delivery slack: -1499 is kept, -1501 is not.
    let records = [failure(-1501, "carol", "c"), failure(-1499, "carol", "c")];
    let (_, run) = window(THRESHOLD, Vec::new(), &records, 0, true, usize::MAX);
    assert_eq!(run.saved[0].count, 1);
    assert_eq!(run.saved[0].first_seen.to_string(), at(-1499));
}

#[test]
fn distinct_values_are_counted_across_the_window_end() {
    let first = [
        failure(-200, "dave", "1.1.1.1"),
        failure(-100, "dave", "2.2.2.2"),
    ];
    let (out, run) = window(CARDINALITY, Vec::new(), &first, 0, true, usize::MAX);
    assert!(out.hits.is_empty());
    // Through JSON, as the store keeps it.
    let text = serde_json::to_string(&run.saved).unwrap();
    let saved: Vec<SavedGroup> = serde_json::from_str(&text).unwrap();
    let second = [
        failure(50, "dave", "2.2.2.2"),
        failure(60, "dave", "3.3.3.3"),
    ];
    let (out, _) = window(CARDINALITY, saved, &second, 3600, true, usize::MAX);
    assert_eq!(out.hits.len(), 1);
    assert_eq!(out.hits[0].distinct, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
}

#[test]
fn a_rule_not_due_keeps_everything_and_finds_it_when_due() {
    let records: Vec<Value> = (0..6)
        .map(|i| failure(-7000 + i * 1200, "erin", "e"))
        .collect();
    // Spread over three windows; a burst of four in the first.
    let mut burst: Vec<Value> = (0..4)
        .map(|i| failure(-7100 + i * 10, "erin", "e"))
        .collect();
    burst.extend(records[..2].iter().cloned());
    let (out, run) = window(THRESHOLD, Vec::new(), &burst, -3600, false, usize::MAX);
    assert!(out.hits.is_empty(), "not due: nothing is evaluated");
    assert!(!run.evaluated);
    assert_eq!(
        run.saved[0].count, 6,
        "all of the group is kept, not only a tail"
    );
    let (out, run) = window(THRESHOLD, run.saved, &records[2..], 0, true, usize::MAX);
    assert!(run.evaluated);
    assert_eq!(
        out.hits.len(),
        1,
        "the burst of the first window is found when due"
    );
    assert_eq!(out.hits[0].count, 10);
    assert_eq!(
        out.hits[0].peak.as_ref().unwrap().first.to_string(),
        at(-7100)
    );
}

#[test]
fn a_rule_that_outgrows_the_limit_is_evaluated_early_not_truncated() {
    let records: Vec<Value> = (0..50)
        .map(|i| failure(-1000 + i, &format!("user{i}"), "x"))
        .collect();
    let (out, run) = window(THRESHOLD, Vec::new(), &records, 0, false, 20_000);
    assert!(run.evaluated && run.early);
    assert!(out.hits.is_empty());
    // Evaluated, its tails must still fit: the newest groups stay, the rest are counted.
    assert!(!run.saved.is_empty());
    assert_eq!(run.saved.len() as u64 + run.dropped, 50);
    assert!(run.dropped > 0, "the limit dropped some");
    assert!(serde_json::to_vec(&run.saved).unwrap().len() <= 20_000);
    let newest = run.saved.iter().map(|g| g.last_seen).max().unwrap();
    assert_eq!(newest.to_string(), at(-951));
}

#[test]
fn groups_kept_for_another_kind_of_rule_are_not_resumed() {
    let (_, run) = window(
        CARDINALITY,
        Vec::new(),
        &[failure(-10, "frank", "1.1.1.1")],
        0,
        true,
        usize::MAX,
    );
    let set = RuleSet::parse(&THRESHOLD.replace("id = \"t\"", "id = \"c\""), "t.toml").unwrap();
    let mut engine = RuleEngine::new(&set);
    assert_eq!(engine.resume("c", run.saved), 0);
}
