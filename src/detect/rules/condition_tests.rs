//! The condition language: parsing with every problem in its place, and evaluation on odd records.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::condition::{parse, Condition, ConditionIssue, MAX_DEPTH};

fn cond(text: &str) -> Condition {
    let value: toml::Value = toml::from_str::<toml::Table>(text).unwrap().into();
    let mut issues = Vec::new();
    let c = parse(&value, "when", 0, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    c.unwrap()
}

fn issues(text: &str) -> Vec<ConditionIssue> {
    let value: toml::Value = toml::from_str::<toml::Table>(text).unwrap().into();
    let mut issues = Vec::new();
    assert!(parse(&value, "when", 0, &mut issues).is_none());
    issues
}

fn test(text: &str, record: Value) -> bool {
    cond(text).holds(&record)
}

#[test]
fn equals_compares_like_with_like() {
    let r = json!({"a": "10", "n": 10, "f": 10.0, "b": true, "s": "Success"});
    assert!(test(
        r#"field = "a"
equals = "10""#,
        r.clone()
    ));
    assert!(
        !test(
            r#"field = "a"
equals = 10"#,
            r.clone()
        ),
        "a string is not a number for equals"
    );
    assert!(test(
        r#"field = "n"
equals = 10"#,
        r.clone()
    ));
    assert!(
        test(
            r#"field = "f"
equals = 10"#,
            r.clone()
        ),
        "an integer equals the same float"
    );
    assert!(test(
        r#"field = "n"
equals = 10.0"#,
        r.clone()
    ));
    assert!(test(
        r#"field = "b"
equals = true"#,
        r.clone()
    ));
    assert!(!test(
        r#"field = "s"
equals = "success""#,
        r.clone()
    ));
    assert!(test(
        r#"field = "s"
equals = "success"
ignore_case = true"#,
        r.clone()
    ));
}

#[test]
fn numeric_ops_read_numbers_out_of_strings() {
    let r = json!({"a": "10", "n": 7, "x": "ten"});
    assert!(test("field = \"a\"\ngt = 9", r.clone()));
    assert!(test("field = \"a\"\nlte = 10", r.clone()));
    assert!(!test("field = \"a\"\nlt = 10", r.clone()));
    assert!(test("field = \"n\"\ngte = 7", r.clone()));
    assert!(!test("field = \"x\"\ngt = 0", r.clone()));
    assert!(!test("field = \"missing\"\ngt = 0", r));
}

#[test]
fn text_ops_and_case() {
    let r = json!({"t": "p2.XLarge", "n": 5});
    assert!(test("field = \"t\"\nwildcard = \"*.?Large\"", r.clone()));
    assert!(!test("field = \"t\"\nwildcard = \"*.xlarge\"", r.clone()));
    assert!(test(
        "field = \"t\"\nwildcard = \"*.xlarge\"\nignore_case = true",
        r.clone()
    ));
    assert!(test("field = \"t\"\nprefix = \"p2.\"", r.clone()));
    assert!(test(
        "field = \"t\"\nprefix = \"P2.X\"\nignore_case = true",
        r.clone()
    ));
    assert!(test("field = \"t\"\nregex = \"p[0-9]\\\\..*\"", r.clone()));
    assert!(
        !test("field = \"t\"\nregex = \"XLarge\"", r.clone()),
        "whole value"
    );
    assert!(test(
        "field = \"t\"\nregex = \".*xlarge\"\nignore_case = true",
        r.clone()
    ));
    assert!(
        !test("field = \"n\"\nprefix = \"5\"", r),
        "text ops look at strings only"
    );
}

#[test]
fn exists_lengths_and_arrays() {
    let r = json!({"items": [{"t": "a"}, {"t": "b"}], "empty": [], "nul": null});
    assert!(test("field = \"items\"\nlength_gte = 2", r.clone()));
    assert!(!test("field = \"items\"\nlength_eq = 3", r.clone()));
    assert!(test("field = \"empty\"\nlength_eq = 0", r.clone()));
    assert!(!test("field = \"items.t\"\nlength_eq = 1", r.clone()));
    assert!(
        test("field = \"items.t\"\nequals = \"b\"", r.clone()),
        "any element"
    );
    assert!(test(
        "field = \"items.t\"\none_of = [\"x\", \"a\"]",
        r.clone()
    ));
    assert!(
        test("field = \"nul\"\nexists = false", r.clone()),
        "null is absent"
    );
    assert!(test("field = \"nope.deeper\"\nexists = false", r.clone()));
    assert!(test("field = \"empty\"\nexists = true", r.clone()));
    assert!(!test("field = \"nope\"\nexists = true", r));
}

#[test]
fn groups_combine_all_any_none() {
    let c = cond(
        r#"all = [{ field = "eventName", equals = "ConsoleLogin" }]
any = [{ field = "x", equals = 1 }, { field = "y", equals = 2 }]
none = [{ field = "z", exists = true }]"#,
    );
    assert!(c.holds(&json!({"eventName": "ConsoleLogin", "y": 2})));
    assert!(!c.holds(&json!({"eventName": "ConsoleLogin"})));
    assert!(!c.holds(&json!({"eventName": "ConsoleLogin", "x": 1, "z": 0})));
    assert!(!c.holds(&json!({"eventName": "Other", "x": 1})));
    assert!(!c.holds(&json!(null)), "odd records do not panic");
    assert!(!c.holds(&json!([1, 2])));
}

#[test]
fn required_values_come_from_all_and_every_any_branch() {
    let c = cond(
        r#"all = [{ field = "eventName", one_of = ["A", "B"] },
                  { all = [{ field = "eventName", equals = "B" }] }]"#,
    );
    assert_eq!(
        c.required_values("eventName"),
        Some(BTreeSet::from(["B".to_string()]))
    );
    let c = cond(
        r#"any = [{ field = "eventName", equals = "A" }, { field = "eventName", equals = "C" }]"#,
    );
    assert_eq!(c.required_values("eventName").map(|s| s.len()), Some(2));
    let c = cond(
        r#"any = [{ field = "eventName", equals = "A" }, { field = "errorCode", exists = true }]"#,
    );
    assert_eq!(c.required_values("eventName"), None);
    let c = cond("field = \"eventName\"\nequals = \"A\"\nignore_case = true");
    assert_eq!(c.required_values("eventName"), None);
}

#[test]
fn every_problem_is_reported_with_its_place() {
    let found = issues(
        r#"all = [
  { field = "a", equals = [1] },
  { field = "b", gt = "x" },
  { field = "c", equals = 1, prefix = "x" },
  { field = "d" },
  { field = "e", regex = "(", ignore_case = true },
  { field = "f", exists = true, ignore_case = true },
  { field = "g..h", exists = true },
  { field = "i", typo = 1, equals = 2 },
  { field = "principal", exists = true },
  {},
  { all = [] },
]
nope = 1"#,
    );
    let places: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        places,
        [
            "when.all[0].equals",
            "when.all[1].gt",
            "when.all[2].prefix",
            "when.all[3].field",
            "when.all[4].regex",
            "when.all[5].ignore_case",
            "when.all[6].field",
            "when.all[7].typo",
            "when.all[8].field",
            "when.all[9]",
            "when.all[10].all",
            "when.nope",
        ],
        "{found:#?}"
    );
    assert!(found[0].1.contains("one_of"));
    assert!(found[4].1.contains("never closed"));
    assert!(found[8].1.contains("grouping key"));
    assert!(found[9].1.contains("empty"));
}

#[test]
fn empty_when_and_too_deep_nesting_are_refused() {
    assert!(issues("")[0].1.contains("every record"));
    let mut text = String::from("{ field = \"a\", exists = true }");
    for _ in 0..=MAX_DEPTH {
        text = format!("{{ all = [{text}] }}");
    }
    let found = issues(&format!("all = [{text}]"));
    assert!(found[0].1.contains("nest deeper"), "{found:?}");
}
