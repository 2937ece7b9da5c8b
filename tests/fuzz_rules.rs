//! Fuzzing of the text people hand trailhound besides logs: the config file
//! (`Config::parse`), rule files (`RuleSet::parse`, their conditions and regexes, and the
//! engine running the rules that parse) and the Elasticsearch rule importer
//! (`rules_import::import`).
//!
//! Inputs are random text, the real inputs of the repository (the example config, the shipped
//! rule pack, the importer's fixtures) edited byte by byte, and documents built from each
//! format's own keys with values of every type. The properties: nothing panics or overflows
//! the stack, every refusal is a value that names the file, an unknown key is always refused,
//! and every rule the importer hands out passes the rule checker, alone and as the file it
//! writes.
//!
//! `TRAILHOUND_FUZZ_SCALE=20 cargo test --test fuzz_rules` runs twenty times the cases.

use std::sync::OnceLock;

mod fuzz_cases;
use fuzz_cases::{cases, on_worker_stack};

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use trailhound::config::{Config, ConfigError};
use trailhound::detect::rules::{Regex, RuleEngine, RuleSet, RulesError, SHIPPED};
use trailhound::detect::rules_import::{import, render_file};

// --- Byte edits of real inputs ---------------------------------------------------------------

#[derive(Clone, Debug)]
enum Edit {
    Replace(Index, String),
    Insert(Index, String),
    Delete(Index, usize),
    Duplicate(Index, usize),
    Truncate(Index),
}

/// Text that means something to TOML or JSON, multibyte characters (a byte offset inside one
/// must never be sliced), and anything else.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("\""),
            Just("'"),
            Just("\\"),
            Just("\"\"\""),
            Just("'''"),
            Just("["),
            Just("]"),
            Just("[["),
            Just("{"),
            Just("}"),
            Just("="),
            Just(","),
            Just("."),
            Just("\n"),
            Just("#"),
            Just(":"),
            Just("\u{0}"),
            Just("é"),
            Just("日本"),
            Just("🦀"),
            Just("\u{feff}"),
            Just("\u{202e}"),
            Just("1e999"),
            Just("-9223372036854775809"),
            Just("nan"),
            Just("inf"),
            Just("1979-05-27T07:32:00Z"),
            Just("true"),
            Just("null"),
        ]
        .prop_map(str::to_string),
        ".{1,12}",
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), fragment()).prop_map(|(i, s)| Edit::Replace(i, s)),
        (any::<Index>(), fragment()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<Index>(), 1usize..60).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 1usize..300).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// The char boundary at or before `i`.
fn boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, edit: &Edit) {
    if text.is_empty() {
        return;
    }
    let at = |i: &Index| boundary(text, i.index(text.len() + 1));
    match edit {
        Edit::Replace(i, s) => {
            let a = at(i);
            let b = boundary(text, a + s.len());
            text.replace_range(a..b, s);
        }
        Edit::Insert(i, s) => {
            let a = at(i);
            text.insert_str(a, s);
        }
        Edit::Delete(i, n) => {
            let a = at(i);
            let b = boundary(text, a + n);
            text.replace_range(a..b, "");
        }
        Edit::Duplicate(i, n) => {
            let a = at(i);
            let b = boundary(text, a + n);
            let copy = text[a..b].to_string();
            text.insert_str(b, &copy);
        }
        Edit::Truncate(i) => {
            let a = at(i);
            text.truncate(a);
        }
    }
}

fn edited(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(edit(), 1..6).prop_map(move |edits| {
        let mut text = base.to_string();
        for e in &edits {
            apply(&mut text, e);
        }
        text
    })
}

/// Reads a file of the repository at test time.
fn repo_file(path: &str) -> &'static str {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text =
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{} reads: {e}", full.display()));
    Box::leak(text.into_boxed_str())
}

fn example_config() -> &'static str {
    static TEXT: OnceLock<&'static str> = OnceLock::new();
    TEXT.get_or_init(|| repo_file("trailhound.example.toml"))
}

// --- TOML values of every type -----------------------------------------------------------

/// A TOML value as written in a document: every type, and the edge values of each.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        prop_oneof![
            Just("nan"),
            Just("-inf"),
            Just("1979-05-27T07:32:00Z"),
            Just("07:32:00")
        ]
        .prop_map(str::to_string),
        ".{0,16}".prop_map(|s| toml::Value::String(s).to_string()),
        prop_oneof![
            Just("10m"),
            Just("0s"),
            Just("1d"),
            Just("99999999999d"),
            Just("-1h"),
            Just("*"),
            Just("iam:CreateAccessKey"),
            Just("111122223333"),
            Just("us-east-1"),
            Just("x'; DROP TABLE t; --"),
            Just("https://127.0.0.1:8088"),
        ]
        .prop_map(|s| toml::Value::String(s.to_string()).to_string()),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..3).prop_map(|v| {
                let items: Vec<String> = v.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", items.join(", "))
            }),
        ]
    })
}

/// Every section and key of the config, from the example (which a unit test keeps complete).
fn config_keys() -> &'static [(String, String)] {
    static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let doc: toml::Table = toml::from_str(example_config()).expect("the example parses");
        let mut keys = Vec::new();
        fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
            for (k, v) in table {
                match v {
                    toml::Value::Table(t) => {
                        let p = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&p, t, out);
                    }
                    _ => out.push((prefix.to_string(), k.clone())),
                }
            }
        }
        walk("", &doc, &mut keys);
        assert!(
            keys.len() > 40,
            "the example documents the config: {keys:?}"
        );
        keys
    })
}

/// A config document: keys of the real sections set to values of any type, and perhaps an
/// unknown key.
fn config_doc() -> impl Strategy<Value = (String, bool)> {
    (
        prop::collection::vec((any::<Index>(), toml_value()), 0..8),
        prop::option::of((any::<Index>(), "[a-z]{3,10}")),
    )
        .prop_map(|(sets, unknown)| {
            let keys = config_keys();
            let mut sections: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (i, value) in sets {
                let (section, key) = &keys[i.index(keys.len())];
                let lines = sections.entry(section.clone()).or_default();
                // A key set twice is a syntax error, which hides the rest of the file.
                if !lines.iter().any(|l| l.starts_with(&format!("{key} = "))) {
                    lines.push(format!("{key} = {value}"));
                }
            }
            let mut has_unknown = false;
            if let Some((i, name)) = unknown {
                let (section, _) = &keys[i.index(keys.len())];
                // `severity.identity`, `severity.tactic` and `tactics` are maps: any key is a
                // name there, checked by meaning, not by the schema.
                let map =
                    ["severity.identity", "severity.tactic", "tactics"].contains(&section.as_str());
                let lines = sections.entry(section.clone()).or_default();
                if !map && !lines.iter().any(|l| l.starts_with(&format!("zz{name} "))) {
                    lines.push(format!("zz{name} = 1"));
                    has_unknown = true;
                }
            }
            let mut text = String::new();
            for (section, lines) in sections {
                if section.is_empty() {
                    // Top-level keys go before any header.
                    text = lines.join("\n") + "\n" + &text;
                } else {
                    text.push_str(&format!("[{section}]\n{}\n", lines.join("\n")));
                }
            }
            (text, has_unknown)
        })
}

/// A refusal names the file it is about.
fn names_origin(e: &ConfigError, origin: &str) -> bool {
    e.to_string().contains(origin)
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_text_as_a_config_is_loaded_or_refused_by_name(text in ".{0,200}") {
        if let Err(e) = Config::parse(&text, "fuzz.toml") {
            prop_assert!(names_origin(&e, "fuzz.toml"), "{e}");
        }
    }

    #[test]
    fn the_example_config_edited_is_loaded_or_refused_by_name(text in edited(example_config())) {
        if let Err(e) = Config::parse(&text, "example.toml") {
            prop_assert!(names_origin(&e, "example.toml"), "{e}");
        }
    }

    #[test]
    fn config_keys_with_values_of_any_type_never_panic((text, unknown) in config_doc()) {
        match Config::parse(&text, "doc.toml") {
            Ok(_) => prop_assert!(!unknown, "an unknown key was accepted:\n{text}"),
            Err(e) => {
                prop_assert!(names_origin(&e, "doc.toml"), "{e}");
                // Every problem is reported at once: an unknown key is named whatever else is
                // wrong, unless the file is not TOML at all.
                let syntax_ok = toml::from_str::<toml::Table>(&text).is_ok();
                if unknown && syntax_ok {
                    prop_assert!(e.to_string().contains("zz"), "the unknown key is not named: {e}");
                }
            }
        }
    }
}

// --- Rules ---------------------------------------------------------------------------------

/// Field paths as rules write them, and now and then ones they should not.
fn field_path() -> impl Strategy<Value = String> {
    prop_oneof![
        36 => prop_oneof![
            Just("eventName"),
            Just("eventSource"),
            Just("userIdentity.arn"),
            Just("userIdentity.sessionContext.sessionIssuer.userName"),
            Just("requestParameters.instancesSet.items.instanceType"),
            Just("requestParameters"),
            Just("responseElements.ConsoleLogin"),
            Just("resources.ARN"),
            Just("readOnly"),
            Just("errorCode"),
        ]
        .prop_map(str::to_string),
        1 => prop_oneof![Just(""), Just(".."), Just("a..b"), Just("eventName."), Just("principal")]
            .prop_map(str::to_string),
        1 => ".{0,10}",
    ]
}

/// Regex patterns, including the ones that make backtracking engines explode and the
/// syntax the engine does not have.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("(a+)+$"),
            Just("(a|aa)*b"),
            Just("((((((((((x))))))))))"),
            Just("[^\\n]*xlarge"),
            Just("a{1000}{1000}"),
            Just("a{99999999999}"),
            Just("(?i)abc"),
            Just("\\"),
            Just("["),
            Just("(?<n>x)"),
            Just("\\p{L}"),
            Just("[z-a]"),
            Just("x**"),
            Just("^$"),
            Just(".*Failure.*"),
        ]
        .prop_map(str::to_string),
        "[a-z()|*+?.\\[\\]{}^$\\\\0-9-]{0,24}",
        ".{0,16}",
    ]
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One test of a field: mostly values of the type the operator wants, sometimes any value.
fn test_op() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        Just("ConsoleLogin".to_string()),
        Just("Failure".to_string()),
        ".{0,12}"
    ];
    let typed = prop_oneof![
        text.clone()
            .prop_map(|s| format!("equals = {}", quoted(&s))),
        any::<i64>().prop_map(|n| format!("equals = {n}")),
        any::<bool>().prop_map(|b| format!("equals = {b}")),
        prop::collection::vec(text.clone(), 1..4).prop_map(|v| {
            let items: Vec<String> = v.iter().map(|s| quoted(s)).collect();
            format!("one_of = [{}]", items.join(", "))
        }),
        text.clone()
            .prop_map(|s| format!("wildcard = {}", quoted(&format!("*{s}*")))),
        text.prop_map(|s| format!("prefix = {}", quoted(&s))),
        pattern().prop_map(|s| format!("regex = {}", quoted(&s))),
        any::<bool>().prop_map(|b| format!("exists = {b}")),
        (
            prop_oneof![Just("gt"), Just("gte"), Just("lt"), Just("lte")],
            -1e6f64..1e6
        )
            .prop_map(|(op, n)| format!("{op} = {n:?}")),
        (
            prop_oneof![Just("length_eq"), Just("length_gte"), Just("length_lte")],
            0u32..20
        )
            .prop_map(|(op, n)| format!("{op} = {n}")),
    ];
    let odd = (
        prop_oneof![
            Just("equals"),
            Just("one_of"),
            Just("regex"),
            Just("exists"),
            Just("gt"),
            Just("length_eq"),
            Just("matches"),
        ],
        toml_value(),
    )
        .prop_map(|(op, v)| format!("{op} = {v}"));
    prop_oneof![24 => typed, 1 => odd]
}

/// A `when` condition as an inline table: field tests and groups, nested a few levels.
fn condition() -> impl Strategy<Value = String> {
    let test = (
        field_path(),
        test_op(),
        prop::option::weighted(0.1, any::<bool>()),
    )
        .prop_map(|(path, op, icase)| {
            let icase = icase.map_or(String::new(), |b| format!(", ignore_case = {b}"));
            format!("{{ field = {}, {op}{icase} }}", quoted(&path))
        });
    test.prop_recursive(4, 16, 3, |inner| {
        (
            prop_oneof![Just("all"), Just("any"), Just("none")],
            // Now and then an empty group, which the checker refuses.
            prop_oneof![
                19 => prop::collection::vec(inner.clone(), 1..3),
                1 => prop::collection::vec(inner, 0..1)
            ],
        )
            .prop_map(|(key, items)| format!("{{ {key} = [{}] }}", items.join(", ")))
    })
}

/// One `[[rule]]`: mostly a well-formed rule of any kind, with now and then a key of any value
/// or one the format does not have.
fn rule_text() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        (1u32..5).prop_map(|n| format!("kind = \"match\"\nmin_count = {n}\n")),
        (1u32..5).prop_map(|n| format!("kind = \"threshold\"\nwindow = \"5m\"\nmin_count = {n}\n")),
        (2u32..5).prop_map(|n| format!(
            "kind = \"cardinality\"\nwindow = \"1h\"\nfield = \"sourceIPAddress\"\nmin_distinct = {n}\n"
        )),
        Just("kind = \"new_terms\"\nterms = [\"eventName\", \"awsRegion\"]\nhistory = \"14d\"\n".to_string()),
    ];
    let kind = prop_oneof![19 => kind, 1 => Just("kind = \"other\"\n".to_string())];
    let odd = prop::option::weighted(
        0.1,
        (
            prop_oneof![
                Just("window"),
                Just("min_count"),
                Just("group_by"),
                Just("score"),
                Just("enabled"),
                Just("every"),
                Just("surprise"),
            ],
            toml_value(),
        ),
    );
    (
        "[a-z0-9][a-z0-9._-]{0,8}",
        kind,
        prop_oneof![19 => Just("high"), 1 => Just("severe")],
        prop_oneof![
            Just(""),
            Just("group_by = []\n"),
            Just("group_by = [\"principal\", \"awsRegion\"]\n"),
        ],
        odd,
        prop::collection::vec(condition(), 1..3),
    )
        .prop_map(|(id, kind, severity, group_by, odd, conditions)| {
            let mut text = format!(
                "[[rule]]\nid = {}\ntitle = \"T\"\nseverity = \"{severity}\"\n{kind}{group_by}",
                quoted(&id)
            );
            if let Some((key, value)) = odd {
                if !text.contains(&format!("\n{key} =")) {
                    text.push_str(&format!("{key} = {value}\n"));
                }
            }
            text.push_str(&format!("when = {{ all = [{}] }}\n", conditions.join(", ")));
            text
        })
}

/// Odd records for the engine: real shapes with values of every type where rules look.
fn odd_record() -> impl Strategy<Value = Value> {
    let any_json = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ]
    .prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    (
        prop_oneof![
            Just(json!("ConsoleLogin")),
            Just(json!("RunInstances")),
            any_json.clone()
        ],
        any_json.clone(),
        any_json,
        prop_oneof![Just("2023-07-10T11:42:36Z"), Just("not a time"), Just("")],
        0u32..1000,
    )
        .prop_map(|(name, identity, params, time, id)| {
            json!({
                "eventTime": time, "eventSource": "ec2.amazonaws.com", "eventName": name,
                "eventID": format!("e{id}"), "recipientAccountId": "111122223333",
                "sourceIPAddress": format!("10.0.0.{}", id % 7),
                "userIdentity": identity, "requestParameters": params,
                "responseElements": {"ConsoleLogin": "Failure"},
                "resources": [{"ARN": params.clone()}], "readOnly": params
            })
        })
}

fn problems_name_their_file(e: &RulesError, origin: &str) -> Result<(), TestCaseError> {
    match e {
        RulesError::Invalid(problems) => {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert_eq!(&p.file, origin);
                prop_assert!(!p.message.is_empty());
            }
        }
        other => prop_assert!(false, "parsing text gave {other}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_text_as_rules_is_checked_or_refused_by_name(text in ".{0,200}") {
        if let Err(e) = RuleSet::parse(&text, "fuzz.toml") {
            problems_name_their_file(&e, "fuzz.toml")?;
        }
    }

    #[test]
    fn the_shipped_rules_edited_are_checked_or_refused_by_name(
        file in any::<Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let (name, text) = SHIPPED[file.index(SHIPPED.len())];
        let mut text = text.to_string();
        for e in &edits {
            apply(&mut text, e);
        }
        match RuleSet::parse(&text, name) {
            Ok(set) => {
                // What the checker accepts, the engine runs.
                let mut engine = RuleEngine::new(&set);
                engine.observe(&json!({"eventName": "ConsoleLogin", "eventTime": "2023-07-10T11:42:36Z"}));
                let _ = engine.finish();
            }
            Err(e) => problems_name_their_file(&e, name)?,
        }
    }

    #[test]
    fn generated_rules_are_checked_and_run_on_odd_records(
        rules in prop::collection::vec(rule_text(), 1..3),
        records in prop::collection::vec(odd_record(), 0..6),
    ) {
        let text = rules.join("\n");
        match RuleSet::parse(&text, "gen.toml") {
            Ok(set) => {
                let mut engine = RuleEngine::new(&set);
                for r in &records {
                    let _ = engine.wants(r);
                    engine.observe(r);
                }
                let out = engine.finish();
                prop_assert!(out.hits.len() <= set.len() * records.len().max(1));
            }
            Err(e) => problems_name_their_file(&e, "gen.toml")?,
        }
    }

    #[test]
    fn any_pattern_compiles_or_is_refused_and_matches_in_bounded_work(
        p in pattern(),
        icase in any::<bool>(),
        text in prop_oneof!["a{0,64}b?", ".{0,64}"],
    ) {
        if let Ok(re) = Regex::with_case(&p, icase) {
            let _ = re.is_full_match(&text);
            let _ = re.is_match(&text);
        }
    }
}

// --- The importer --------------------------------------------------------------------------

fn fixture(name: &str) -> &'static str {
    static TEXTS: OnceLock<Vec<(String, &'static str)>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        ["dynamodb_scan.json", "seed_examples.json"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    repo_file(&format!("tests/fixtures/es_rules/{n}")),
                )
            })
            .collect()
    });
    texts
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| *t)
        .expect("a fixture")
}

/// What the importer promises of every rule it hands out: each passes the rule checker on its
/// own, and the file `rules import` writes holds them all.
fn imported_rules_check(text: &str) -> Result<(), TestCaseError> {
    let report = match import(text) {
        Ok(r) => r,
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            return Ok(());
        }
    };
    for rule in &report.rules {
        let alone = RuleSet::parse(&rule.toml, "imported.toml");
        prop_assert!(
            alone.is_ok(),
            "imported rule {} does not check: {}\n{}",
            rule.id,
            alone.err().map(|e| e.to_string()).unwrap_or_default(),
            rule.toml
        );
    }
    let file = render_file(&report);
    if report.rules.is_empty() {
        // Comments only: the file parses as TOML, and holds no rule.
        prop_assert!(toml::from_str::<toml::Table>(&file).is_ok(), "{file}");
    } else {
        let all = RuleSet::parse(&file, "imported.toml");
        prop_assert!(
            all.as_ref().is_ok_and(|s| s.len() == report.rules.len()),
            "the written file does not hold the {} rules: {:?}\n{file}",
            report.rules.len(),
            all.err().map(|e| e.to_string())
        );
    }
    Ok(())
}

/// An Elasticsearch query clause, from the DSL's own names, nested a few levels.
fn es_clause() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("eventName.keyword".to_string()),
        Just("eventName".to_string()),
        Just("userIdentity.arn".to_string()),
        Just("errorCode".to_string()),
        Just("eventTime".to_string()),
        Just("requestParameters.bucketName".to_string()),
        ".{0,10}",
    ];
    let scalar = prop_oneof![
        ".{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(json!("*Failure*")),
        Just(json!("now-1h")),
        Just(json!("x'; DROP TABLE t; --")),
    ];
    let leaf = (
        prop_oneof![
            Just("term"),
            Just("terms"),
            Just("match"),
            Just("match_phrase"),
            Just("wildcard"),
            Just("prefix"),
            Just("regexp"),
            Just("exists"),
            Just("range"),
            Just("query_string"),
            Just("fuzzy"),
            Just("match_all"),
            Just("unknown_query"),
        ],
        field,
        scalar.clone(),
        prop::collection::vec(scalar, 0..3),
        0u8..4,
    )
        .prop_map(|(kind, field, value, values, shape)| {
            let body = match (kind, shape) {
                ("terms", _) => json!({ field: values }),
                ("exists", _) => json!({ "field": field }),
                ("range", _) => json!({ field: { "gte": value, "lt": values.first() } }),
                ("match_all", _) => json!({}),
                (_, 0) => json!({ field: value }),
                (_, 1) => json!({ field: { "value": value, "boost": 2 } }),
                (_, 2) => json!({ field: { "query": value, "operator": "and" } }),
                _ => value,
            };
            json!({ kind: body })
        });
    leaf.prop_recursive(3, 12, 3, |inner| {
        (
            prop_oneof![
                Just("must"),
                Just("filter"),
                Just("must_not"),
                Just("should"),
                Just("minimum_should_match"),
                Just("boost")
            ],
            prop::collection::vec(inner.clone(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(key, clauses, as_list)| {
                let v = if as_list || clauses.is_empty() {
                    Value::Array(clauses)
                } else {
                    clauses[0].clone()
                };
                json!({ "bool": { key: v } })
            })
    })
}

/// A rule item with a generated query, in the plain or the DynamoDB attribute-value form.
fn es_item() -> impl Strategy<Value = Value> {
    let aggs = prop_oneof![
        Just(Value::Null),
        Just(json!({"k": {"terms": {"field": "userIdentity.arn.keyword", "size": 5}}})),
        Just(json!({"k": {"terms": {"field": 42}}})),
        Just(json!({"k": {"avg": {"field": "x"}}})),
    ];
    (
        prop_oneof![
            ".{0,16}",
            Just("New users launching EC2 instance".to_string())
        ],
        es_clause(),
        aggs,
        prop::option::of(-5i64..100_000),
        prop::option::of(-5i64..100),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(id, clause, aggs, period, min, query_as_text, dynamodb)| {
            let mut query = json!({ "query": clause, "size": 0 });
            if !aggs.is_null() {
                query["aggs"] = aggs;
            }
            let query = if query_as_text {
                Value::String(query.to_string())
            } else {
                query
            };
            let mut item = json!({ "RuleId": id, "Query": query, "ES_Index": "cloudtrail*" });
            if let Some(p) = period {
                item["AlertPeriodMinutes"] = json!(p);
            }
            if let Some(m) = min {
                item["AlertMinimumEventCount"] = json!(m);
            }
            if dynamodb {
                let attr = |v: &Value| match v {
                    Value::String(s) => json!({ "S": s }),
                    Value::Number(n) => json!({ "N": n.to_string() }),
                    other => json!({ "S": other.to_string() }),
                };
                let map: serde_json::Map<String, Value> = item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), attr(v)))
                    .collect();
                Value::Object(map)
            } else {
                item
            }
        })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_text_as_rule_items_is_imported_or_refused(text in ".{0,200}") {
        imported_rules_check(&text)?;
    }

    #[test]
    fn the_importer_fixtures_edited_import_checked_rules(
        which in any::<bool>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let base = fixture(if which { "dynamodb_scan.json" } else { "seed_examples.json" });
        let mut text = base.to_string();
        for e in &edits {
            apply(&mut text, e);
        }
        imported_rules_check(&text)?;
    }

    #[test]
    fn generated_rule_items_import_checked_rules(
        items in prop::collection::vec(es_item(), 1..4),
        as_lines in any::<bool>(),
    ) {
        let text = if as_lines {
            items.iter().map(|i| i.to_string() + "\n").collect::<String>()
        } else {
            Value::Array(items).to_string()
        };
        imported_rules_check(&text)?;
    }
}

// --- Nesting ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(12))]

    #[test]
    fn nesting_of_any_depth_in_any_input_is_refused_not_a_stack_overflow(
        depth in prop_oneof![1usize..200, 200usize..100_000],
        shape in 0usize..6,
    ) {
        let deep_array = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let deep_table = format!("{}1{}", "{a=".repeat(depth), "}".repeat(depth));
        let dotted = vec!["a"; depth].join(".");
        let deep_json = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let group = format!("{}{{ field = \"eventName\", equals = \"x\" }}{}", "{ all = [".repeat(depth.min(2000)), "] }".repeat(depth.min(2000)));
        on_worker_stack(|| -> Result<(), TestCaseError> {
            match shape {
                0 => { let _ = Config::parse(&format!("[hunt]\nsettle = {deep_array}\n"), "c.toml"); }
                1 => { let _ = Config::parse(&format!("x = {deep_table}\n"), "c.toml"); }
                2 => {
                    let _ = Config::parse(&format!("{dotted} = 1\n"), "c.toml");
                    let _ = Config::parse(&format!("[{dotted}]\n"), "c.toml");
                }
                3 => {
                    let text = format!("[[rule]]\nid = \"a\"\ntitle = \"T\"\nseverity = \"low\"\nkind = \"match\"\nwhen = {group}\n");
                    let r = RuleSet::parse(&text, "r.toml");
                    prop_assert!(depth <= 16 || r.is_err(), "{depth} levels were accepted");
                }
                4 => {
                    imported_rules_check(&format!("[{{\"RuleId\":\"x\",\"Query\":{deep_json}}}]"))?;
                    let query = Value::String(format!("{{\"query\":{}}}", "{\"bool\":{\"must\":".repeat(depth.min(5000)) + "{}" + &"}}".repeat(depth.min(5000)) + "}"));
                    imported_rules_check(&json!([{ "RuleId": "x", "Query": query }]).to_string())?;
                }
                _ => {
                    let _ = Regex::new(&format!("{}a{}", "(".repeat(depth), ")".repeat(depth)));
                    let _ = RuleSet::parse(&format!("[[rule]]\nid = \"a\"\n{dotted} = 1\n"), "r.toml");
                }
            }
            Ok(())
        })?;
    }
}
