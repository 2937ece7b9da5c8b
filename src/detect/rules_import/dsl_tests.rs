//! Each Elasticsearch construct, converted alone: the condition written, the notes, and the
//! problems with their places.

use serde_json::{json, Value};

use super::tests::item_with_query;
use super::*;

/// Imports one rule whose Query is `search`; every converted rule must load.
fn convert(search: Value) -> ImportReport {
    let report = import(&item_with_query(&search.to_string()).to_string()).expect("readable");
    for r in &report.rules {
        RuleSet::parse(&r.toml, "t.toml").unwrap_or_else(|e| panic!("{e}\n{}", r.toml));
    }
    report
}

/// The `[rule.when]` body of a query converted as a match rule.
fn when(query: Value) -> String {
    let report = convert(json!({ "query": query }));
    assert_eq!(report.failures, [], "{:#?}", report.failures);
    let toml = &report.rules[0].toml;
    toml.split_once("[rule.when]\n")
        .expect("when")
        .1
        .to_string()
}

fn notes(query: Value) -> String {
    convert(json!({ "query": query })).rules[0].notes.join("\n")
}

/// (position, reason) of each failure.
fn problems(search: Value) -> Vec<(String, String)> {
    let report = convert(search);
    assert_eq!(report.rules, [], "expected a failure");
    report
        .failures
        .into_iter()
        .map(|f| (f.position, f.reason))
        .collect()
}

fn problem_at(query: Value) -> String {
    let found = problems(json!({ "query": query }));
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0].0.clone()
}

fn term(field: &str, value: &str) -> Value {
    json!({ "term": { field: value } })
}

#[test]
fn bool_must_and_filter_are_all_must_not_is_none() {
    // Raw text, so the clauses keep the order they were written in.
    let text = r#"{"query": {"bool": {
        "must": [{"term": {"eventName.keyword": "A"}}],
        "filter": {"term": {"eventSource.keyword": "s"}},
        "must_not": [{"term": {"userIdentity.type.keyword": "Root"}}]}}}"#;
    let report = import(&item_with_query(text).to_string()).expect("readable");
    let w = report.rules[0]
        .toml
        .split_once("[rule.when]\n")
        .expect("when")
        .1;
    assert_eq!(
        w,
        "all = [\n  { field = \"eventName\", equals = \"A\" },\n  { field = \"eventSource\", equals = \"s\" },\n]\n\
         none = [\n  { field = \"userIdentity.type\", equals = \"Root\" },\n]\n"
    );
}

#[test]
fn should_alone_is_any() {
    let w = when(json!({"bool": {"should": [term("a.keyword", "1"), term("b.keyword", "2")]}}));
    assert_eq!(
        w,
        "any = [\n  { field = \"a\", equals = \"1\" },\n  { field = \"b\", equals = \"2\" },\n]\n"
    );
}

#[test]
fn should_beside_must_only_scores_and_is_dropped_with_a_note() {
    let q = json!({"bool": {"must": [term("a.keyword", "1")], "should": [term("b.keyword", "2")]}});
    assert_eq!(
        when(q.clone()),
        "all = [\n  { field = \"a\", equals = \"1\" },\n]\n"
    );
    assert!(notes(q).contains("`query.bool.should`: 1 clause(s) dropped: next to must/filter and without minimum_should_match they only raise the score"));
    // Inside a filter, Elasticsearch 6.x required one of them: the note says so.
    let nested = json!({"bool": {"filter": [{"bool": {"must": [term("a.keyword", "1")], "should": [term("b.keyword", "2")]}}]}});
    assert!(notes(nested)
        .contains("Elasticsearch 6.x and older required one of them inside a filter context"));
}

#[test]
fn minimum_should_match_one_is_any_and_all_of_them_is_all() {
    let one = json!({"bool": {"must": [term("a.keyword", "1")], "should": [term("b.keyword", "2"), term("c.keyword", "3")], "minimum_should_match": 1}});
    assert_eq!(
        when(one),
        "all = [\n  { field = \"a\", equals = \"1\" },\n]\nany = [\n  { field = \"b\", equals = \"2\" },\n  { field = \"c\", equals = \"3\" },\n]\n"
    );
    let all = json!({"bool": {"should": [term("b.keyword", "2"), term("c.keyword", "3")], "minimum_should_match": "100%"}});
    assert_eq!(
        when(all),
        "all = [\n  { field = \"b\", equals = \"2\" },\n  { field = \"c\", equals = \"3\" },\n]\n"
    );
    // -1 of 2 is 1.
    let minus = json!({"bool": {"should": [term("b.keyword", "2"), term("c.keyword", "3")], "minimum_should_match": -1}});
    assert!(when(minus).starts_with("any = ["));
}

#[test]
fn minimum_should_match_between_one_and_all_cannot_be_converted() {
    let should = [
        term("a.keyword", "1"),
        term("b.keyword", "2"),
        term("c.keyword", "3"),
    ];
    let found = problems(json!({"query": {"bool": {"should": should, "minimum_should_match": 2}}}));
    assert_eq!(found[0].0, "query.bool.should");
    assert!(found[0]
        .1
        .contains("\"at least 2 of 3\" has no trailhound form"));
    let found = problems(json!({"query": {"bool": {"should": should, "minimum_should_match": 4}}}));
    assert!(found[0].1.contains("matches no event"));
    let found =
        problems(json!({"query": {"bool": {"should": should, "minimum_should_match": "2<75%"}}}));
    assert_eq!(found[0].0, "query.bool.minimum_should_match");
}

#[test]
fn nested_bools_flatten_where_the_logic_allows() {
    let q = json!({"bool": {"filter": [
        {"bool": {"must": [term("a.keyword", "1")], "must_not": [term("b.keyword", "2")]}},
        {"bool": {"should": [term("c.keyword", "3"), term("d.keyword", "4")]}},
        {"bool": {"should": [term("e.keyword", "5"), term("f.keyword", "6")]}},
    ]}});
    assert_eq!(
        when(q),
        "all = [\n  { field = \"a\", equals = \"1\" },\n  { any = [{ field = \"e\", equals = \"5\" }, { field = \"f\", equals = \"6\" }] },\n]\n\
         any = [\n  { field = \"c\", equals = \"3\" },\n  { field = \"d\", equals = \"4\" },\n]\n\
         none = [\n  { field = \"b\", equals = \"2\" },\n]\n"
    );
}

#[test]
fn term_forms_and_value_types() {
    assert_eq!(
        when(json!({"term": {"eventName.keyword": {"value": "X", "boost": 2.0}}})),
        "all = [\n  { field = \"eventName\", equals = \"X\" },\n]\n"
    );
    assert!(
        when(json!({"term": {"eventName.keyword": {"value": "x", "case_insensitive": true}}}))
            .contains("equals = \"x\", ignore_case = true")
    );
    // A number on a keyword field was compared as text.
    assert!(
        when(json!({"term": {"recipientAccountId.keyword": 861828696892_u64}}))
            .contains("equals = \"861828696892\"")
    );
    // Elsewhere it stays a number, with a note.
    assert!(when(json!({"term": {"readOnly": false}})).contains("equals = false"));
    assert!(notes(json!({"term": {"requestParameters.maxCount": 5}}))
        .contains("the value 5 is compared as a number"));
    assert!(
        notes(json!({"term": {"eventName": "X"}})).contains("if the index analysed `eventName`")
    );
    assert!(problem_at(json!({"term": {"a": null}})).starts_with("query.term.a"));
    assert_eq!(
        problem_at(json!({"term": {"a": "1", "b": "2"}})),
        "query.term"
    );
}

#[test]
fn terms_is_one_of() {
    assert!(
        when(json!({"terms": {"eventName.keyword": ["A", "B"], "boost": 1}}))
            .contains("{ field = \"eventName\", one_of = [\"A\", \"B\"] }")
    );
    assert!(when(json!({"terms": {"eventName.keyword": ["A"]}})).contains("equals = \"A\""));
    let found = problems(
        json!({"query": {"terms": {"eventName.keyword": {"index": "i", "id": "1", "path": "p"}}}}),
    );
    assert!(found[0].1.contains("terms lookup"));
    assert!(
        problems(json!({"query": {"terms": {"eventName.keyword": []}}}))[0]
            .1
            .contains("matches no event")
    );
}

#[test]
fn wildcard_becomes_the_simplest_equivalent() {
    let op = |pattern: &str| when(json!({"wildcard": {"eventName.keyword": pattern}}));
    assert!(op("CreateBucket").contains("equals = \"CreateBucket\""));
    assert!(op("RunInstances*").contains("prefix = \"RunInstances\""));
    assert!(op("*Failure*").contains("wildcard = \"*Failure*\""));
    assert!(op("Get?bject").contains("wildcard = \"Get?bject\""));
    // An escaped `*` must stay literal: trailhound globs have no escapes.
    assert!(
        op(r"a\*b?").contains(r#"regex = "^a\\*b(?:.|\\n)$""#),
        "{}",
        op(r"a\*b?")
    );
    // A literal `*` is fine in a prefix.
    assert!(op(r"a\*b*").contains("prefix = \"a*b\""));
    assert!(op(r"a\*b").contains("equals = \"a*b\""));
    assert!(when(
        json!({"wildcard": {"eventName.keyword": {"value": "get*", "case_insensitive": true}}})
    )
    .contains("prefix = \"get\", ignore_case = true"));
    assert!(
        when(json!({"wildcard": {"eventName.keyword": {"wildcard": "*x"}}}))
            .contains("wildcard = \"*x\"")
    );
    assert!(problems(json!({"query": {"wildcard": {"a": "x\\"}}}))[0]
        .1
        .contains("lone `\\`"));
}

#[test]
fn escaped_wildcards_match_as_elasticsearch_did() {
    let report = convert(json!({"query": {"wildcard": {"eventName.keyword": r"a\*b?"}}}));
    let rule = RuleSet::parse(&report.rules[0].toml, "t")
        .expect("loads")
        .rules()[0]
        .clone();
    assert!(rule.when.holds(&json!({"eventName": "a*bc"})));
    assert!(!rule.when.holds(&json!({"eventName": "axbc"})));
}

#[test]
fn prefix() {
    assert!(when(json!({"prefix": {"eventName.keyword": "Get"}})).contains("prefix = \"Get\""));
    assert!(when(
        json!({"prefix": {"eventName.keyword": {"value": "get", "case_insensitive": true}}})
    )
    .contains("prefix = \"get\", ignore_case = true"));
    assert!(when(json!({"prefix": {"eventName.keyword": ""}})).contains("exists = true"));
}

#[test]
fn match_on_keyword_is_exact_and_on_text_ignores_case_with_a_note() {
    assert_eq!(
        when(json!({"match": {"eventName.keyword": "ConsoleLogin"}})),
        "all = [\n  { field = \"eventName\", equals = \"ConsoleLogin\" },\n]\n"
    );
    assert!(when(json!({"match": {"userIdentity.type": "AWSService"}}))
        .contains("equals = \"AWSService\", ignore_case = true"));
    let n = notes(json!({"match": {"userAgent": {"query": "aws cli", "operator": "or"}}}));
    assert!(n.contains("approximated by a case-insensitive comparison with the whole value"));
    assert!(
        n.contains(
            "holding any one of the words (operator OR); here the whole value must equal `aws cli`"
        ),
        "{n}"
    );
    assert!(
        notes(json!({"match": {"userAgent": {"query": "aws cli", "operator": "AND"}}}))
            .contains("all of the words, in any order")
    );
    assert_eq!(
        problem_at(json!({"match": {"userAgent": {"query": "x", "fuzziness": "AUTO"}}})),
        "query.match.userAgent.fuzziness"
    );
}

#[test]
fn match_phrase() {
    assert!(
        when(json!({"match_phrase": {"errorMessage": {"query": "Access Denied", "slop": 0}}}))
            .contains("equals = \"Access Denied\", ignore_case = true")
    );
    assert!(
        notes(json!({"match_phrase": {"errorMessage": "Access Denied"}}))
            .contains("the words in this order")
    );
}

#[test]
fn numeric_ranges_become_numeric_tests() {
    assert_eq!(
        when(json!({"range": {"requestParameters.maxCount": {"gte": 5, "lt": 10.5}}})),
        "all = [\n  { field = \"requestParameters.maxCount\", gte = 5 },\n  { field = \"requestParameters.maxCount\", lt = 10.5 },\n]\n"
    );
    assert!(when(json!({"range": {"n": {"gt": "7"}}})).contains("gt = 7"));
    assert!(
        when(json!({"range": {"n": {"from": 1, "to": 2, "include_upper": false}}}))
            .contains("{ field = \"n\", gte = 1 },\n  { field = \"n\", lt = 2 }")
    );
    // Under must_not the bounds stay together.
    assert!(
        when(json!({"bool": {"must_not": {"range": {"n": {"gt": 1, "lt": 3}}}}})).contains(
            "none = [\n  { all = [{ field = \"n\", gt = 1 }, { field = \"n\", lt = 3 }] },"
        )
    );
    let found = problems(
        json!({"query": {"range": {"userIdentity.sessionContext.attributes.creationDate": {"gte": "now-1d"}}}}),
    );
    assert_eq!(
        found[0].0,
        "query.range.userIdentity.sessionContext.attributes.creationDate.gte"
    );
    assert!(found[0].1.contains("ranges on dates or text"));
}

#[test]
fn the_event_time_range_is_the_run_window_and_is_dropped() {
    let q = json!({"bool": {"filter": [term("eventName.keyword", "X"), {"range": {"@timestamp": {"gte": "now-5m"}}}]}});
    assert_eq!(
        when(q.clone()),
        "all = [\n  { field = \"eventName\", equals = \"X\" },\n]\n"
    );
    assert!(notes(q).contains("`query.bool.filter[1].range.@timestamp` (gte now-5m) was the Elasticsearch run window: dropped"));
    // Under must_not it would depend on when the rule ran.
    assert_eq!(
        problem_at(json!({"bool": {"must_not": [{"range": {"eventTime": {"lt": "now-1h"}}}]}})),
        "query.bool.must_not[0].range.eventTime"
    );
}

#[test]
fn exists_and_match_all() {
    assert!(when(json!({"exists": {"field": "errorCode"}}))
        .contains("{ field = \"errorCode\", exists = true }"));
    // A match rule cannot have an empty condition: every record has an eventTime.
    let report = convert(json!({"query": {"match_all": {}}}));
    assert!(report.rules[0]
        .toml
        .contains("{ field = \"eventTime\", exists = true }"));
    // For a new-terms rule the aggregation only saw events holding its field.
    let report = convert(
        json!({"query": {"range": {"eventTime": {"gte": "now-5m"}}}, "aggs": {"k": {"terms": {"field": "sourceIPAddress.keyword"}}}}),
    );
    assert!(report.rules[0]
        .toml
        .contains("{ field = \"sourceIPAddress\", exists = true }"));
    assert!(
        problems(json!({"query": {"bool": {"must_not": {"match_all": {}}}}}))[0]
            .1
            .contains("matches none")
    );
}

#[test]
fn unsupported_queries_are_named_with_their_place() {
    let q = json!({"bool": {"must": [term("a.keyword", "1"), term("b.keyword", "2"), {"fuzzy": {"userName": "bob"}}]}});
    let found = problems(json!({ "query": q }));
    assert_eq!(found[0].0, "query.bool.must[2].fuzzy");
    assert!(found[0].1.contains("edit-distance"));
    for (kind, why) in [
        ("query_string", "Lucene query syntax"),
        ("regexp", "Lucene regular expressions"),
        ("script", "runs code"),
        ("match_none", "never fire"),
        ("geo_shape", "not supported"),
    ] {
        let found = problems(json!({"query": {"bool": {"filter": [{kind: {}}]}}}));
        assert_eq!(found[0].0, format!("query.bool.filter[0].{kind}"));
        assert!(found[0].1.contains(why), "{kind}: {}", found[0].1);
    }
}

#[test]
fn every_problem_of_a_query_is_reported_at_once() {
    let q = json!({"bool": {"must": [{"regexp": {"a": "x"}}], "filter": [{"fuzzy": {"b": "y"}}], "bogus": 1}});
    let places: Vec<String> = problems(json!({ "query": q }))
        .into_iter()
        .map(|p| p.0)
        .collect();
    // (json! sorts keys: filter comes before must here.)
    assert_eq!(
        places,
        [
            "query.bool.bogus",
            "query.bool.filter[0].fuzzy",
            "query.bool.must[0].regexp"
        ]
    );
}

#[test]
fn duplicate_keys_are_refused_not_silently_merged() {
    let text = r#"{"query":{"bool":{"must":[{"term":{"a":"1"}}],"must":[{"term":{"b":"2"}}]}}}"#;
    let report = import(&item_with_query(text).to_string()).expect("readable");
    assert_eq!(report.failures[0].position, "query.bool.must");
    assert!(report.failures[0].reason.contains("appears twice"));
}

#[test]
fn aggregations_name_the_key() {
    let agg = |terms: Value| json!({"query": {"term": {"a.keyword": "1"}}, "aggregations": {"by": {"terms": terms, "aggs": {"n": {"cardinality": {"field": "x"}}}}}});
    let report = convert(agg(
        json!({"field": "userIdentity.arn.keyword", "min_doc_count": 4, "include": ["arn:1", "arn:2"], "exclude": ["arn:3"]}),
    ));
    let r = &report.rules[0];
    assert!(r.toml.contains("terms = [\"userIdentity.arn\"]"));
    assert!(
        r.toml.contains("min_count = 4"),
        "min_doc_count above AlertMinimumEventCount wins"
    );
    assert!(r
        .toml
        .contains("{ field = \"userIdentity.arn\", one_of = [\"arn:1\", \"arn:2\"] }"));
    assert!(r
        .toml
        .contains("none = [\n  { field = \"userIdentity.arn\", one_of = [\"arn:3\"] },"));
    assert!(r.notes.join("\n").contains(
        "`aggregations.by.aggs`: sub-aggregations only add figures to each key; ignored"
    ));
    let found = problems(agg(json!({"field": "a", "missing": "none"})));
    assert_eq!(found[0].0, "aggregations.by.terms.missing");
    let found =
        problems(json!({"aggs": {"a": {"terms": {"field": "x"}}, "b": {"terms": {"field": "y"}}}}));
    assert!(found[0].1.contains("2 aggregations (`a`, `b`)"));
    let found = problems(json!({"aggs": {"t": {"date_histogram": {"field": "eventTime"}}}}));
    assert_eq!(found[0].0, "aggs.t.date_histogram");
    // Without AlertPeriodMinutes there is no history.
    let mut item = item_with_query(&json!({"aggs": {"k": {"terms": {"field": "x"}}}}).to_string());
    item.as_object_mut()
        .expect("object")
        .remove("AlertPeriodMinutes");
    let report = import(&item.to_string()).expect("readable");
    assert_eq!(report.failures[0].position, "AlertPeriodMinutes");
}

#[test]
fn a_query_without_aggregation_is_a_match_rule() {
    let report = convert(
        json!({"query": {"term": {"eventName.keyword": "DeleteTrail"}}, "size": 0, "sort": ["eventTime"]}),
    );
    let r = &report.rules[0];
    assert!(
        r.toml
            .contains("kind = \"match\"\ngroup_by = []\nmin_count = 1\n"),
        "{}",
        r.toml
    );
    assert!(!r.toml.contains("history"));
    assert!(r.notes.join("\n").contains("ignored `sort`"));
    let found = problems(json!({"query": {"match_all": {}}, "post_filter": {}}));
    assert_eq!(found[0].0, "post_filter");
}

#[test]
fn field_names_become_paths() {
    assert_eq!(
        leaf::field_path("a.b.keyword").map(|f| f.path),
        Ok("a.b".to_string())
    );
    assert_eq!(
        leaf::field_path("tags.aws:cloudformation:stack-name").map(|f| f.path),
        Ok("tags.\"aws:cloudformation:stack-name\"".to_string())
    );
    assert!(leaf::field_path("a..b").is_err());
    assert!(leaf::field_path(".keyword").is_err());
}

#[test]
fn an_empty_bool_matches_everything_whatever_its_minimum_should_match() {
    let report = convert(json!({"query": {"bool": {"minimum_should_match": 1}}}));
    assert!(report.rules[0]
        .toml
        .contains("{ field = \"eventTime\", exists = true }"));
    // With other clauses but no should, it matches nothing, as in Lucene.
    let found = problems(
        json!({"query": {"bool": {"must": {"exists": {"field": "a"}}, "minimum_should_match": 1}}}),
    );
    assert!(found[0].1.contains("matches no event"));
}
