//! The import as a whole: the seed's example rules, the input shapes, hostile input.

use serde_json::json;

use super::*;
use crate::detect::rules::{Key, Rule, RuleKind};

/// The three example items of the Elasticsearch rule system, laid out as its documentation
/// shows them: one after another, the second with its Query pasted unescaped.
const SEED: &str = include_str!("../../../tests/fixtures/es_rules/seed_examples.json");
/// The same three items as `aws dynamodb scan` prints them, the second's Query stored as the
/// text it holds.
const SCAN: &str = include_str!("../../../tests/fixtures/es_rules/dynamodb_scan.json");

/// The one rule of a `[[rule]]` table, through trailhound's own loader.
fn load(toml: &str) -> Rule {
    let set = RuleSet::parse(toml, "imported.toml").expect("the imported rule loads");
    set.rules()[0].clone()
}

fn rule<'a>(report: &'a ImportReport, id: &str) -> &'a ImportedRule {
    report
        .rules
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no rule {id} in {:#?}", report.rules))
}

pub(super) fn item_with_query(query: &str) -> serde_json::Value {
    json!({
        "RuleId": "Test rule",
        "RuleType": "User activity anomaly",
        "RunScheduleInMinutes": 60,
        "AlertPeriodMinutes": 60,
        "AlertMinimumEventCount": 1,
        "AlertText": "Alert",
        "Query": query,
    })
}

/// A CloudTrail record for the example rules.
fn record(event: &str, identity_type: &str, account: &str) -> serde_json::Value {
    json!({
        "eventSource": "ec2.amazonaws.com",
        "eventName": event,
        "recipientAccountId": account,
        "userIdentity": {"type": identity_type, "accessKeyId": "AKIAEXAMPLE"},
    })
}

#[test]
fn seed_examples_two_convert_and_the_unescaped_query_is_named_with_its_place() {
    let report = import(SEED).expect("readable");
    let ids: Vec<&str> = report.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "new-users-launching-ec2-instance",
            "failed-user-authentication"
        ]
    );
    assert_eq!(
        report.failures,
        [ImportFailure {
            rule_id: "New user created S3 bucket".into(),
            position: "input line 29 column 14, in Query".into(),
            reason: "item 2 is not valid JSON: line 29 column 14: control character \
                (\\u0000-\\u001F) found while parsing a string near \
                `...un\": 1595858028,\\n  \"Query\": \"{<HERE>\\n    \"query\": {\\n    ...`; \
                the Query attribute must be one JSON string holding the query: escape its \
                quotes and line breaks (`\\\"`, `\\n`), as `jq -Rs .` prints a file; \
                lines 18-60 were skipped"
                .into(),
        }]
    );
}

#[test]
fn seed_example_1_alerts_on_an_access_key_new_to_launching_instances() {
    let report = import(SEED).expect("readable");
    let imported = rule(&report, "new-users-launching-ec2-instance");
    let r = load(&imported.toml);
    assert_eq!(r.title, "New users launching EC2 instance");
    assert!(r.enabled);
    assert_eq!(
        r.group_by,
        [],
        "one global group: the key itself is the new term"
    );
    match &r.kind {
        RuleKind::NewTerms {
            terms,
            history,
            min_count,
        } => {
            assert_eq!(terms.len(), 1);
            assert!(matches!(&terms[0], Key::Path(p) if p.as_str() == "userIdentity.accessKeyId"));
            assert_eq!(*history, Span::hours(60), "AlertPeriodMinutes 3600");
            assert_eq!(*min_count, 1);
        }
        other => panic!("expected new_terms, got {other:?}"),
    }
    // RunInstances* by a person in the account matches; AWS services and other accounts do not.
    let account = "861828696892";
    assert!(r.when.holds(&record("RunInstances", "IAMUser", account)));
    assert!(!r.when.holds(&record("RunInstances", "AWSService", account)));
    assert!(!r
        .when
        .holds(&record("RunInstances", "IAMUser", "111122223333")));
    assert!(!r.when.holds(&record("StopInstances", "IAMUser", account)));
    // The match on the analysed `userIdentity.type` ignores case, as Elasticsearch's did.
    assert!(!r.when.holds(&record("RunInstances", "awsservice", account)));
    let state = imported.state.as_ref().expect("state");
    assert_eq!(state.last_run, Some(1_595_858_028));
    assert_eq!(
        state.last_keys.get("AKIA4RKH6JM6CBCA3X5U"),
        Some(&1_595_122_200)
    );
    let notes = imported.notes.join("\n");
    for expected in [
        "`query.bool.filter[2].range.eventTime` (gte 2020-05-01T00:00:00.000Z) was the Elasticsearch run window: dropped",
        "`aggs.my_count.terms.size` 5: Elasticsearch reported at most the 5 most frequent keys",
        "`query.bool.must_not[0].match.userIdentity.type`: Elasticsearch analysed",
    ] {
        assert!(notes.contains(expected), "missing {expected:?} in\n{notes}");
    }
}

#[test]
fn seed_example_4_keeps_its_count_and_matches_the_object_as_text() {
    let report = import(SEED).expect("readable");
    let imported = rule(&report, "failed-user-authentication");
    let r = load(&imported.toml);
    assert!(r.enabled, "{}", imported.toml);
    match &r.kind {
        RuleKind::NewTerms {
            terms,
            history,
            min_count,
        } => {
            assert!(matches!(&terms[0], Key::Path(p) if p.as_str() == "userIdentity.userName"));
            assert_eq!(*history, Span::minutes(5));
            assert_eq!(*min_count, 3);
        }
        other => panic!("expected new_terms, got {other:?}"),
    }
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.contains("compact JSON text")),
        "{:?}",
        imported.notes
    );
    // The index held responseElements as text; CloudTrail's record holds an object, which the
    // wildcard reads as its JSON text.
    let failure = json!({
        "eventSource": "signin.amazonaws.com",
        "recipientAccountId": "987654321",
        "responseElements": {"ConsoleLogin": "Failure"},
    });
    assert!(r.when.holds(&failure));
    let success = json!({
        "eventSource": "signin.amazonaws.com",
        "recipientAccountId": "987654321",
        "responseElements": {"ConsoleLogin": "Success"},
    });
    assert!(!r.when.holds(&success));
}

#[test]
fn dynamodb_scan_output_converts_all_three_once_the_query_is_a_proper_string() {
    let report = import(SCAN).expect("readable");
    assert_eq!(report.failures, []);
    let ids: Vec<&str> = report.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "new-users-launching-ec2-instance",
            "new-user-created-s3-bucket",
            "failed-user-authentication"
        ]
    );
    // The same rules as from the plain items.
    let plain = import(SEED).expect("readable");
    assert_eq!(report.rules[0], plain.rules[0]);
    let s3 = load(&report.rules[1].toml);
    assert!(
        matches!(&s3.kind, RuleKind::NewTerms { terms, .. } if matches!(&terms[0], Key::Path(p) if p.as_str() == "userIdentity.arn"))
    );
    let bucket = json!({"eventSource": "s3.amazonaws.com", "eventName": "CreateBucket", "recipientAccountId": "861828696892"});
    assert!(s3.when.holds(&bucket));
    assert!(!s3.when.holds(&json!({"eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket", "recipientAccountId": "861828696892"})));
}

#[test]
fn the_rendered_file_loads_and_every_table_has_exactly_the_format_keys() {
    let report = import(SCAN).expect("readable");
    let file = render_file(&report);
    let set = RuleSet::parse(&file, "imported.toml").expect("the whole file loads");
    assert_eq!(set.len(), 3);
    let parsed: toml::Table = toml::from_str(&file).expect("TOML");
    let allowed = [
        "id",
        "title",
        "text",
        "severity",
        "enabled",
        "kind",
        "group_by",
        "terms",
        "history",
        "min_count",
        "every",
        "when",
    ];
    for table in parsed["rule"].as_array().expect("rules") {
        let keys: Vec<&str> = table
            .as_table()
            .expect("table")
            .keys()
            .map(String::as_str)
            .collect();
        for k in &keys {
            assert!(allowed.contains(k), "extra key {k}");
        }
        assert_eq!(
            keys.len(),
            allowed.len(),
            "new_terms rules carry every key: {keys:?}"
        );
    }
    assert!(file.starts_with("# trailhound rules converted from Elasticsearch rules"));
    assert!(file.contains("# 3 converted, 0 not converted."));
}

#[test]
fn failures_are_listed_in_the_file_header() {
    let file = render_file(&import(SEED).expect("readable"));
    assert!(file.contains("# Not converted:\n# - \"New user created S3 bucket\" at input line 29 column 14, in Query: item 2 is not valid JSON"), "{file}");
    assert!(file.contains("# - failed-user-authentication: `query.bool.must[0].wildcard"));
    RuleSet::parse(&file, "imported.toml").expect("loads");
}

#[test]
fn a_query_that_is_not_json_is_reported_by_line_column_and_excerpt() {
    let query = r#"{"query":{"bool":{"filter":[{"term":{"eventName.keyword":"CreateBucket"}} {"term":{"eventSource.keyword":"s3.amazonaws.com"}}]}}}"#;
    let report = import(&item_with_query(query).to_string()).expect("readable");
    assert_eq!(report.rules, []);
    assert_eq!(
        report.failures,
        [ImportFailure {
            rule_id: "Test rule".into(),
            position: "Query line 1 column 75".into(),
            reason: "Query is not valid JSON: line 1 column 75: expected `,` or `]` near \
                `...ame.keyword\":\"CreateBucket\"}} <HERE>{\"term\":{\"eventSourc...`"
                .into(),
        }]
    );
}

#[test]
fn an_unfinished_query_points_at_its_end() {
    let report = import(&item_with_query("{\n  \"query\": {\"match_all\": {}}\n").to_string())
        .expect("readable");
    assert_eq!(report.failures[0].position, "Query line 3 column 0");
    assert!(
        report.failures[0].reason.ends_with(
            "EOF while parsing an object near `...\\n  \"query\": {\"match_all\": {}}\\n<HERE>`"
        ),
        "{}",
        report.failures[0].reason
    );
}

#[test]
fn every_input_shape_gives_the_same_rule() {
    let item = item_with_query(
        r#"{"query":{"term":{"eventName.keyword":"CreateBucket"}},"aggs":{"k":{"terms":{"field":"userIdentity.arn.keyword"}}}}"#,
    );
    let single = import(&item.to_string()).expect("one item");
    assert_eq!(single.failures, []);
    let expected = &single.rules[0];
    let array = format!("[{item}, {item}]");
    let lines = format!("{item}\n{item}\n");
    let pretty = format!(
        "{}\n{}",
        serde_json::to_string_pretty(&item).expect("json"),
        serde_json::to_string_pretty(&item).expect("json")
    );
    let dynamo_item = json!({
        "RuleId": {"S": "Test rule"},
        "RuleType": {"S": "User activity anomaly"},
        "RunScheduleInMinutes": {"N": "60"},
        "AlertPeriodMinutes": {"N": "60"},
        "AlertMinimumEventCount": {"N": "1"},
        "AlertText": {"S": "Alert"},
        "Query": {"S": item["Query"]},
    });
    let scan = json!({"Items": [dynamo_item, dynamo_item], "Count": 2}).to_string();
    let get = json!({"Item": dynamo_item}).to_string();
    for (shape, text) in [
        ("array", array),
        ("lines", lines),
        ("pretty", pretty),
        ("scan", scan),
        ("get-item", get),
    ] {
        let report = import(&text).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_eq!(report.failures, [], "{shape}");
        assert_eq!(&report.rules[0].toml, &expected.toml, "{shape}");
        if shape != "get-item" {
            // The second copy gets its own id.
            assert_eq!(report.rules[1].id, "test-rule-2", "{shape}");
        }
    }
}

#[test]
fn numbers_may_be_numeric_strings() {
    let mut item = item_with_query(
        r#"{"query":{"term":{"eventName.keyword":"X"}},"aggs":{"k":{"terms":{"field":"userIdentity.arn.keyword"}}}}"#,
    );
    item["AlertPeriodMinutes"] = json!(" 90 ");
    item["AlertMinimumEventCount"] = json!("2");
    item["LastRun"] = json!("1595858028");
    let report = import(&item.to_string()).expect("readable");
    let r = &report.rules[0];
    assert!(r.toml.contains("history = \"90m\""), "{}", r.toml);
    assert!(r.toml.contains("min_count = 2"));
    assert_eq!(
        r.state.as_ref().and_then(|s| s.last_run),
        Some(1_595_858_028)
    );
}

#[test]
fn bad_attributes_are_all_reported_and_the_next_item_still_converts() {
    let bad = json!({"RuleId": "Broken", "RunScheduleInMinutes": 99_999_999_999_999_u64, "AlertPeriodMinutes": "soon", "AlertMinimumEventCount": -1, "Query": 5});
    let good = item_with_query(r#"{"query":{"term":{"eventName.keyword":"X"}}}"#);
    let report = import(&format!("[{bad},{good}]")).expect("readable");
    let places: Vec<&str> = report
        .failures
        .iter()
        .map(|f| f.position.as_str())
        .collect();
    assert_eq!(
        places,
        [
            "Query",
            "RunScheduleInMinutes",
            "AlertPeriodMinutes",
            "AlertMinimumEventCount"
        ]
    );
    assert!(report.failures.iter().all(|f| f.rule_id == "Broken"));
    assert_eq!(report.rules.len(), 1);
    assert!(report.rules[0].toml.contains("kind = \"match\""));
}

#[test]
fn a_broken_item_in_an_array_is_skipped_and_reading_resumes() {
    let good = serde_json::to_string_pretty(&item_with_query(
        r#"{"query":{"term":{"eventName.keyword":"X"}}}"#,
    ))
    .expect("json");
    let indented = |s: &str| {
        s.lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = format!(
        "[\n{},\n  {{\n    \"RuleId\": \"Half\",\n    \"Query\": \"{{\"oops\n  }},\n{}\n]\n",
        indented(&good),
        indented(&good)
    );
    let report = import(&text).expect("readable");
    assert_eq!(report.rules.len(), 2, "{:#?}", report.failures);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].rule_id, "Half");
    assert!(report.failures[0].position.ends_with(", in Query"));
}

#[test]
fn unreadable_input_is_an_error_for_the_whole() {
    assert_eq!(import(" \n"), Err(ImportError::Empty));
    let e = import("RuleId: x").unwrap_err();
    assert_eq!(e.to_string(), "the input is not rule items in JSON: line 1 column 1: expected `[` or `{` near `<HERE>RuleId: x`");
    // A lone scalar in an array is an item that is not an object.
    let report = import("[1]").expect("readable");
    assert_eq!(
        report.failures[0].reason,
        "expected an object with RuleId, Query, ..., got a number"
    );
}

#[test]
fn ids_are_valid_unique_and_derived_from_the_rule_id() {
    let mut taken = HashSet::new();
    assert_eq!(
        allocate_id("New users launching EC2 instance", &mut taken),
        "new-users-launching-ec2-instance"
    );
    assert_eq!(
        allocate_id("New users launching EC2 instance", &mut taken),
        "new-users-launching-ec2-instance-2"
    );
    assert_eq!(allocate_id("_private", &mut taken), "es-_private");
    assert_eq!(allocate_id("Ünïcode!!", &mut taken), "n-code");
    assert_eq!(allocate_id("???", &mut taken), "es-rule");
    let long = allocate_id(&"a".repeat(200), &mut taken);
    assert_eq!(long.len(), 64);
    let long2 = allocate_id(&"a".repeat(200), &mut taken);
    assert_eq!(long2, format!("{}-2", "a".repeat(62)));
    for id in &taken {
        assert!(crate::detect::rules::model::valid_id(id), "{id}");
    }
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    // 10,000 levels inside the Query: serde_json stops at 128.
    let deep = format!(
        "{}{}",
        "{\"bool\":{\"must\":".repeat(10_000),
        "}}".repeat(10_000)
    );
    let report =
        import(&item_with_query(&format!("{{\"query\":{deep}}}")).to_string()).expect("readable");
    assert!(
        report.failures[0]
            .reason
            .contains("recursion limit exceeded"),
        "{:?}",
        report.failures
    );
    // 40 bool levels parse as JSON, and stop at our own bound of 32.
    let mut q = json!({"term": {"eventName.keyword": "X"}});
    for _ in 0..40 {
        q = json!({"bool": {"must": [q]}});
    }
    let report =
        import(&item_with_query(&json!({"query": q}).to_string()).to_string()).expect("readable");
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(report.failures[0].reason.contains("nest deeper than 32"));
    assert!(report.failures[0]
        .position
        .starts_with("query.bool.must[0].bool.must[0]"));
    // 10,000 levels in the input itself.
    let outer = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let report = import(&outer).expect("the array opens");
    assert!(report.failures[0]
        .reason
        .contains("recursion limit exceeded"));
}

#[test]
fn huge_strings_do_not_break_anything() {
    let huge = "é".repeat(1_000_000);
    let mut item = item_with_query(&format!(
        "{{\"query\":{{\"term\":{{\"eventName.keyword\":\"{huge}\"}}}}}}"
    ));
    item["RuleId"] = json!(huge.clone());
    item["Description"] = json!(huge.clone());
    let report = import(&item.to_string()).expect("readable");
    assert_eq!(report.failures, []);
    assert!(report.rules[0].id.len() <= 64);
    load(&report.rules[0].toml);
    // A syntax error in the middle of multi-byte text: the excerpt stays on char boundaries.
    let broken = format!("{{\"query\":{{\"term\":{{\"x\":\"{huge}\" \"{huge}\"}}}}}}");
    let report = import(&item_with_query(&broken).to_string()).expect("readable");
    assert!(report.failures[0].reason.contains("<HERE>"));
    assert!(report.failures[0].reason.len() < 400);
    // Control characters and quotes in attributes end up escaped in TOML and out of comments.
    let mut item = item_with_query(r#"{"query":{"term":{"eventName.keyword":"a\"b\\c\u0007"}}}"#);
    item["RuleId"] = json!("line\nbreak \"quoted\"");
    item["ES_Index"] = json!("x\n[[rule]]");
    let report = import(&item.to_string()).expect("readable");
    let r = load(&report.rules[0].toml);
    assert_eq!(r.title, "line break \"quoted\"");
    let event = json!({"eventName": "a\"b\\c\u{7}"});
    assert!(r.when.holds(&event));
}
