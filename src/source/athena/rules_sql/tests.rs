//! Unit tests of the rule SQL: literals, keys, regex translation, conditions.

use super::*;

fn rules(when: &str) -> RuleSet {
    RuleSet::parse(
        &format!(
            "[[rule]]\nid = \"r\"\ntitle = \"R\"\nseverity = \"low\"\nkind = \"match\"\n\
             [rule.when]\n{when}\n"
        ),
        "test.toml",
    )
    .unwrap()
}

fn compile(when: &str) -> Result<String, RuleSqlError> {
    compile_where(&rules(when))
}

#[test]
fn literals_double_quotes_and_refuse_nul() {
    assert_eq!(literal("it's").unwrap(), "'it''s'");
    assert_eq!(literal("a\\'b").unwrap(), "'a\\''b'");
    assert!(literal("a\0b").is_err());
}

#[test]
fn json_keys_are_plain_names_only() {
    for good in ["instancesSet", "x-amz-acl", "a.b", "aws:SourceIp", "0"] {
        assert!(check_key(good).is_ok(), "{good}");
    }
    for bad in ["", "a\"b", "a'b", "a]b", "a b", "a\\b", "$..*", "ключ"] {
        assert!(check_key(bad).is_err(), "{bad:?}");
    }
    assert!(check_key(&"a".repeat(129)).is_err());
}

#[test]
fn values_cannot_leave_their_literal() {
    let sql = compile(r#"all = [{ field = "eventName", equals = "x') OR TRUE --" }]"#).unwrap();
    assert!(sql.contains("'x'') OR TRUE --'"), "{sql}");
    let e = compile("all = [{ field = \"eventName\", equals = \"a\\u0000b\" }]").unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
}

#[test]
fn paths_cannot_reach_sql_unchecked() {
    let e =
        compile(r#"all = [{ field = "requestParameters.\"a\\\"]') OR 1=1 --\"", exists = true }]"#)
            .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("rule `r`") && text.contains("cannot be written"),
        "{text}"
    );
    let e = compile(r#"all = [{ field = "eventName; DROP TABLE x", exists = true }]"#).unwrap_err();
    assert!(e.to_string().contains("no column"), "{e}");
    let e = compile(r#"all = [{ field = "userIdentity.Type", equals = "Root" }]"#).unwrap_err();
    assert!(e.to_string().contains("no field `Type`"), "{e}");
}

#[test]
fn tests_that_the_table_cannot_answer_name_rule_and_field() {
    let e = compile(r#"all = [{ field = "eventName", equals = 10 }]"#).unwrap_err();
    match e {
        RuleSqlError::Test {
            rule, field, why, ..
        } => {
            assert_eq!(rule, "r");
            assert_eq!(field, "eventName");
            assert!(why.contains("number"), "{why}");
        }
        other => panic!("{other}"),
    }
    assert!(compile(r#"all = [{ field = "readOnly", equals = "true" }]"#).is_err());
    assert!(compile(r#"all = [{ field = "eventName", length_gte = 2 }]"#).is_err());
    assert!(compile(r#"all = [{ field = "userIdentity", equals = "x" }]"#).is_err());
    assert!(compile(
        r#"all = [{ field = "userIdentity.sessionContext.webIdFederationData.attributes.x", exists = true }]"#
    )
    .is_err());
    assert!(
        compile(r#"all = [{ field = "errorCode", regex = "É.*", ignore_case = true }]"#).is_err()
    );
}

#[test]
fn regexes_are_anchored_and_rewritten_for_every_engine() {
    let r = |p: &str| regex_to_sql(p, false).unwrap();
    assert_eq!(r("a.b"), "\\A(?:a[^\\x0A]b)\\z");
    assert_eq!(r("\\d+x"), "\\A(?:[0-9]+x)\\z");
    assert_eq!(r("^a$"), "\\A(?:\\Aa\\z)\\z");
    assert_eq!(r("(a|b){2,3}"), "\\A(?:(?:a|b){2,3})\\z");
    assert_eq!(r("(?:a)"), "\\A(?:(?:a))\\z");
    assert_eq!(r("[]a-c\\d&]"), "\\A(?:[\\]a-c0-9\\&])\\z");
    assert_eq!(r("[a-]"), "\\A(?:[a\\-])\\z");
    assert_eq!(r("[^\\.]"), "\\A(?:[^\\.])\\z");
    assert_eq!(r("\\S"), "\\A(?:[^\\x09-\\x0D ])\\z");
    assert_eq!(r("a\\tb"), "\\A(?:a\\x09b)\\z");
    assert_eq!(regex_to_sql("ab", true).unwrap(), "(?i)\\A(?:ab)\\z");
}

#[test]
fn the_shipped_pack_compiles() {
    let set = RuleSet::shipped().unwrap();
    let sql = compile_where(&set).unwrap();
    assert!(sql.contains("json_extract(responseelements, '$')"), "{sql}");
    assert!(sql.contains("'$[\"ConsoleLogin\"]'"), "{sql}");
    let record = compile_record(&set).unwrap();
    for key in [
        "'requestParameters'",
        "'responseElements'",
        "'additionalEventData'",
    ] {
        assert!(record.contains(key), "{key}");
    }
    let mut off = rules(r#"all = [{ field = "eventName", equals = "X" }]"#);
    off.disable(&["r".to_string()]);
    assert!(matches!(compile_where(&off), Err(RuleSqlError::NoRules)));
}

#[test]
fn rows_become_records() {
    let table = ResultTable {
        columns: vec!["record".into()],
        rows: vec![
            vec![Some(
                r#"{"eventName":"X","requestParameters":{"a":[1]}}"#.into(),
            )],
            vec![None],
        ],
    };
    let v = row_to_record(&table, 0).unwrap();
    assert_eq!(v["requestParameters"]["a"][0], 1);
    assert!(row_to_record(&table, 1).is_err());
    assert!(rule_records(&table).is_err());
}

#[test]
fn the_rule_query_reads_the_activity_querys_objects() {
    use crate::config::{AthenaConfig, TrailConfig};
    let trail = TrailConfig {
        bucket: "org-trail-logs".into(),
        prefix: String::new(),
        org_id: Some("o-a1b2c3d4e5".into()),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
    };
    let settings = SqlSettings::new(&trail, &AthenaConfig::default()).unwrap();
    let account = AccountId::parse("111122223333").unwrap();
    let at = |s: &str| crate::cloudtrail::Timestamp::parse(s).unwrap();
    let window = Window::new(at("2024-03-01T23:30:00Z"), at("2024-03-02T00:30:00Z")).unwrap();
    let sql = render(
        &settings,
        &rules(r#"all = [{ field = "eventName", equals = "X" }]"#),
        &account,
        &window,
    )
    .unwrap();
    let paths = settings.delivered_paths(&account, &window).unwrap();
    assert!(sql.contains(&format!("AND {paths}")), "{sql}");
    assert!(
        sql.contains("delivery_date IN ('2024/03/01', '2024/03/02')"),
        "{sql}"
    );
    assert!(sql.contains(">= '20240301T2330Z'") && sql.contains("< '20240302T0030Z'"));
}
