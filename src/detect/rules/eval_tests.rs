//! The engine over hand-made records: windows, grouping, order and duplicates, odd input.

use serde_json::{json, Value};

use super::{RuleEngine, RuleOutput, RuleSet};
use crate::cloudtrail::Timestamp;

fn engine(rules: &str) -> RuleEngine {
    RuleEngine::new(&RuleSet::parse(rules, "test.toml").unwrap())
}

pub(super) fn record(name: &str, time: &str, id: &str, user: &str) -> Value {
    json!({
        "eventTime": time, "eventSource": "signin.amazonaws.com", "eventName": name,
        "eventID": id, "awsRegion": "us-east-1", "sourceIPAddress": format!("10.0.0.{}", id.len()),
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": user,
            "arn": format!("arn:aws:iam::111122223333:user/{user}")},
        "responseElements": {"ConsoleLogin": "Failure"}
    })
}

pub(super) const THRESHOLD: &str = r#"
[[rule]]
id = "t"
title = "T"
severity = "medium"
kind = "threshold"
window = "5m"
min_count = 4
[rule.when]
all = [{ field = "eventName", equals = "ConsoleLogin" }]
"#;

fn at(seconds: i64) -> String {
    Timestamp::from_unix(1_688_990_000 + seconds).to_string()
}

fn run(rules: &str, records: &[Value]) -> RuleOutput {
    let mut e = engine(rules);
    records.iter().for_each(|r| e.observe(r));
    e.finish()
}

#[test]
fn threshold_windows_are_half_open() {
    // Four records spanning exactly 300 s: [t, t+300) holds only three of them.
    let spread: Vec<Value> = [0, 100, 200, 300]
        .iter()
        .map(|s| record("ConsoleLogin", &at(*s), &format!("id{s}"), "alice"))
        .collect();
    assert!(run(THRESHOLD, &spread).hits.is_empty());
    let tight: Vec<Value> = [0, 100, 200, 299, 2000]
        .iter()
        .map(|s| record("ConsoleLogin", &at(*s), &format!("id{s}"), "alice"))
        .collect();
    let out = run(THRESHOLD, &tight);
    assert_eq!(out.hits.len(), 1);
    let hit = &out.hits[0];
    assert_eq!(hit.count, 5);
    let peak = hit.peak.as_ref().unwrap();
    assert_eq!(
        (peak.count, peak.first.to_string(), peak.last.to_string()),
        (4, at(0), at(299))
    );
    assert_eq!(hit.first_seen.to_string(), at(0));
    assert_eq!(hit.last_seen.to_string(), at(2000));
    assert_eq!(
        hit.group,
        [(
            "principal".to_string(),
            "arn:aws:iam::111122223333:user/alice".to_string()
        )]
    );
    assert_eq!(
        hit.evidence.principal.as_ref().unwrap().display_name(),
        "alice"
    );
}

#[test]
fn order_does_not_matter_and_duplicates_count_once() {
    let mut records: Vec<Value> = (0..6)
        .map(|s| record("ConsoleLogin", &at(s * 10), &format!("id{s}"), "bob"))
        .collect();
    records.push(records[0].clone());
    let forward = run(THRESHOLD, &records);
    records.reverse();
    let backward = run(THRESHOLD, &records);
    assert_eq!(forward, backward);
    assert_eq!(forward.hits[0].count, 6);
    assert_eq!(forward.stats.duplicates, 1);
    assert_eq!(forward.hits[0].evidence.sample_event_ids.len(), 6);
}

#[test]
fn records_no_rule_wants_and_odd_records_are_cheap_and_safe() {
    let mut e = engine(THRESHOLD);
    e.observe(&json!(null));
    e.observe(&json!({"eventName": 5}));
    e.observe(&json!({"eventName": "ConsoleLogin"}));
    e.observe(&json!({"eventName": "ConsoleLogin", "eventTime": "yesterday"}));
    e.observe(&record("GetObject", &at(0), "x", "carol"));
    let out = e.finish();
    assert_eq!(out.stats.records, 5);
    assert_eq!(out.stats.matched, 2);
    assert_eq!(out.stats.no_event_time, 2);
    assert!(out.hits.is_empty());
}

#[test]
fn cardinality_counts_distinct_values_in_a_window() {
    let rules = r#"
[[rule]]
id = "c"
title = "C"
severity = "high"
kind = "cardinality"
window = "1h"
field = "sourceIPAddress"
min_distinct = 3
when = { field = "eventName", equals = "ConsoleLogin" }
"#;
    let mut records = Vec::new();
    for (i, (s, ip)) in [
        (0, "1.1.1.1"),
        (10, "1.1.1.1"),
        (20, "2.2.2.2"),
        (4000, "3.3.3.3"),
        (4100, "4.4.4.4"),
        (4200, "2.2.2.2"),
    ]
    .iter()
    .enumerate()
    {
        let mut r = record("ConsoleLogin", &at(*s), &format!("id{i}"), "dave");
        r["sourceIPAddress"] = json!(ip);
        records.push(r);
    }
    let mut no_ip = record("ConsoleLogin", &at(5), "noip", "dave");
    no_ip.as_object_mut().unwrap().remove("sourceIPAddress");
    records.push(no_ip);
    let out = run(rules, &records);
    assert_eq!(out.hits.len(), 1, "{out:#?}");
    let hit = &out.hits[0];
    assert_eq!(hit.distinct, ["2.2.2.2", "3.3.3.3", "4.4.4.4"]);
    assert_eq!(hit.peak.as_ref().unwrap().count, 3);
    assert_eq!(out.stats.missing_value["c"], 1);
    // Two distinct values in any hour is a near miss.
    let out = run(rules, &records[..3]);
    assert!(out.hits.is_empty());
}

#[test]
fn new_terms_report_candidates_per_group_and_term() {
    let rules = r#"
[[rule]]
id = "n"
title = "N"
severity = "low"
kind = "new_terms"
terms = ["eventName", "awsRegion"]
history = "14d"
min_count = 2
when = { field = "eventSource", equals = "signin.amazonaws.com" }
"#;
    let records = [
        record("ConsoleLogin", &at(0), "a", "erin"),
        record("ConsoleLogin", &at(1), "b", "erin"),
        record("CheckMfa", &at(2), "c", "erin"),
        record("ConsoleLogin", &at(3), "d", "frank"),
        record("ConsoleLogin", &at(4), "e", "frank"),
    ];
    let out = run(rules, &records);
    let terms: Vec<(&str, &[String])> = out
        .term_candidates
        .iter()
        .map(|c| (c.group[0].1.as_str(), c.term.as_slice()))
        .collect();
    assert_eq!(terms.len(), 2, "{terms:?}");
    assert!(terms[0].0.ends_with("user/erin"));
    assert_eq!(terms[0].1, ["ConsoleLogin", "us-east-1"]);
    assert!(terms[1].0.ends_with("user/frank"));
}

#[test]
fn match_rules_group_and_disabled_rules_do_not_run() {
    let rules = r#"
[[rule]]
id = "m"
title = "M"
severity = "low"
kind = "match"
group_by = ["userIdentity.userName", "awsRegion"]
min_count = 2
when = { field = "eventName", equals = "ConsoleLogin" }

[[rule]]
id = "off"
title = "Off"
severity = "low"
kind = "match"
enabled = false
when = { field = "eventName", equals = "ConsoleLogin" }
"#;
    let records = [
        record("ConsoleLogin", &at(0), "a", "gina"),
        record("ConsoleLogin", &at(1), "b", "gina"),
        record("ConsoleLogin", &at(2), "c", "hank"),
    ];
    let out = run(rules, &records);
    assert_eq!(out.hits.len(), 1);
    assert_eq!(
        out.hits[0].group,
        [
            ("userIdentity.userName".to_string(), "gina".to_string()),
            ("awsRegion".to_string(), "us-east-1".to_string())
        ]
    );
}

#[test]
fn an_empty_group_by_makes_the_whole_window_one_group() {
    let rules = r#"
[[rule]]
id = "all"
title = "All"
severity = "low"
kind = "threshold"
group_by = []
window = "1m"
min_count = 3
when = { field = "eventName", equals = "ConsoleLogin" }
"#;
    let records = [
        record("ConsoleLogin", &at(0), "a", "ivan"),
        record("ConsoleLogin", &at(1), "b", "judy"),
        record("ConsoleLogin", &at(2), "c", "kim"),
    ];
    let out = run(rules, &records);
    assert_eq!(out.hits.len(), 1);
    assert!(out.hits[0].group.is_empty());
    assert_eq!(out.hits[0].count, 3);
    assert_eq!(
        out.hits[0]
            .evidence
            .principal
            .as_ref()
            .unwrap()
            .display_name(),
        "ivan"
    );
}
