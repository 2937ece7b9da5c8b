//! SQL injection, tried through every door text has into SQL: account ids, regions, the
//! table, database, bucket, prefix and organization settings of the config, and the fields and
//! values of rules, into the Athena statements; and record fields into the SQLite store.
//!
//! Each attempt is either refused with an error naming what was wrong, or rendered inert, and
//! inert is proved by executing: the Athena statements run on DuckDB (as tests/athena_sql.rs
//! runs them) and must match the hostile text literally and leave the table in place; the
//! SQLite state file is opened after a run and must hold the hostile text verbatim, every
//! table still there.

mod common;
#[path = "sql/duckdb.rs"]
mod duckdb;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::{t, user_call, write_object};
use trailhound::cloudtrail::{AccountId, Region};
use trailhound::config::{AthenaConfig, Config, PartitionMode, TrailConfig};
use trailhound::detect::rules::RuleSet;
use trailhound::source::athena::rules_sql::{row_to_record, RuleQuery};
use trailhound::source::athena::{activity_rows, SqlError, SqlSettings};
use trailhound::source::scan::FolderSource;
use trailhound::source::ActivitySource;
use trailhound::window::Window;

const ACCOUNT: &str = "111122223333";

/// Texts that end a literal, an identifier or a statement in one SQL dialect or another.
const PAYLOADS: &[&str] = &[
    "x'); DROP TABLE cloudtrail; --",
    "' OR '1'='1",
    "\\'; SELECT 1; --",
    "\"; DROP TABLE \"cloudtrail\"; --",
    "`; DROP TABLE `cloudtrail`; --",
    "%_\\%",
    "$[\"a\"]'",
    "'||chr(39)||'",
    "\u{2bc} OR 1=1 --",
    "*/ SELECT 1 /*",
];

fn trailhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trailhound"))
}

fn trail(bucket: &str, prefix: &str, org: Option<&str>, regions: &[&str]) -> TrailConfig {
    TrailConfig {
        bucket: bucket.into(),
        prefix: prefix.into(),
        org_id: org.map(str::to_string),
        regions: regions.iter().map(|r| r.to_string()).collect(),
    }
}

/// A config file's `[trail]` and `[athena]` with one value replaced.
fn athena_config(field: &str, value: &str) -> String {
    let mut values = vec![
        ("trail", "bucket", "trailhound-fixture".to_string()),
        ("trail", "prefix", "logs".to_string()),
        ("trail", "org_id", "o-abc123".to_string()),
        ("athena", "database", "trailhound".to_string()),
        ("athena", "table", "cloudtrail".to_string()),
        ("athena", "projection_start", "2020/01/01".to_string()),
        ("athena", "workgroup", "primary".to_string()),
    ];
    for v in &mut values {
        if format!("{}.{}", v.0, v.1) == field {
            v.2 = value.to_string();
        }
    }
    let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut text = String::from("[source]\nkind = \"athena\"\n");
    for section in ["trail", "athena"] {
        text.push_str(&format!("[{section}]\n"));
        for (s, k, v) in &values {
            if *s == section {
                text.push_str(&format!("{k} = {}\n", quoted(v)));
            }
        }
        if section == "trail" {
            let region = if field == "trail.regions" {
                value
            } else {
                "us-east-1"
            };
            text.push_str(&format!("regions = [{}]\n", quoted(region)));
        }
    }
    text
}

#[test]
fn hostile_settings_and_ids_are_refused_before_any_sql_is_written() {
    let mut attempts = 0;
    let hostile = |extra: &[&str]| -> Vec<String> {
        PAYLOADS
            .iter()
            .map(|p| format!("trailhound{p}"))
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    // Every setting that reaches a statement, through the config file and through the SQL
    // settings built in code (which check again).
    let fields: Vec<(&str, Vec<String>)> = vec![
        (
            "athena.database",
            hostile(&["Trailhound", "trail hound", "", "ü"]),
        ),
        (
            "athena.table",
            hostile(&["Cloudtrail", "cloud.trail", "x-y"]),
        ),
        ("trail.bucket", hostile(&["Bucket", "b", "bucket/../other"])),
        (
            "trail.prefix",
            hostile(&["/logs", "logs/", "a//b", "logs$x", "logs\\x", "logs\n--"]),
        ),
        ("trail.org_id", hostile(&["o-ABC", "o-", "ou-abc"])),
        ("trail.regions", hostile(&["US-EAST-1", "us east 1", ""])),
        (
            "athena.projection_start",
            hostile(&["2020-01-01", "2020/13/45x"]),
        ),
    ];
    for (field, values) in &fields {
        for value in values {
            let text = athena_config(field, value);
            let loaded = Config::parse(&text, "hostile.toml");
            let e = loaded
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                e.contains(field.rsplit('.').next().unwrap_or(field)),
                "{field} = {value:?} is refused naming the field: {e}"
            );
            // The same value in code, past the file's checks: SQL settings refuse it too.
            let (mut tr, mut at) = (
                trail(
                    "trailhound-fixture",
                    "logs",
                    Some("o-abc123"),
                    &["us-east-1"],
                ),
                AthenaConfig::default(),
            );
            match *field {
                "athena.database" => at.database = value.clone(),
                "athena.table" => at.table = value.clone(),
                "trail.bucket" => tr.bucket = value.clone(),
                "trail.prefix" => tr.prefix = value.clone(),
                "trail.org_id" => tr.org_id = Some(value.clone()),
                "trail.regions" => tr.regions = vec![value.clone()],
                _ => at.projection_start = value.clone(),
            }
            match SqlSettings::new(&tr, &at) {
                Err(SqlError::Setting { field: f, .. }) => assert_eq!(f, *field),
                other => panic!("{field} = {value:?} reached the SQL settings: {other:?}"),
            }
            attempts += 2;
        }
    }
    // Account ids and regions are types that only hold what AWS writes.
    for p in PAYLOADS {
        assert!(AccountId::parse(&format!("{ACCOUNT}{p}")).is_err());
        assert!(Region::parse(&format!("us-east-1{p}")).is_err());
        attempts += 2;
    }
    eprintln!("settings and ids: {attempts} injection attempts, all refused by name");
}

#[test]
fn hostile_account_ids_on_the_command_line_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_object(
        &dir.path().join("AWSLogs"),
        ACCOUNT,
        "us-east-1",
        "2024-03-01T10:05:00Z",
        &[user_call(
            ACCOUNT,
            "a",
            "s3.amazonaws.com",
            "ListBuckets",
            "2024-03-01T10:00:00Z",
            "e",
        )],
    );
    let id = "111122223333' OR '1'='1";
    for args in [
        vec!["account", "--id", id],
        vec!["hunt", "--account", id],
        vec!["scan", "--account", id],
        vec!["rules", "state", "--account", id],
    ] {
        let out = trailhound()
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("not an AWS account id"),
            "{args:?}: {stderr}"
        );
    }
}

// --- Executed on DuckDB ----------------------------------------------------------------------

/// The records the hostile rules run over: every payload in the fields rules test, and a
/// clean record that nothing should match.
fn hostile_records() -> Vec<Value> {
    let mut records = Vec::new();
    for (i, p) in PAYLOADS.iter().enumerate() {
        let mut r = user_call(
            ACCOUNT,
            &format!("user{i}"),
            "s3.amazonaws.com",
            p,
            &format!("2024-05-01T10:{:02}:00Z", i),
            &format!("hostile-{i}"),
        );
        r["userAgent"] = json!(p);
        r["errorCode"] = json!(p);
        r["requestParameters"] = json!({ "bucketName": p });
        records.push(r);
    }
    records.push(user_call(
        ACCOUNT,
        "clean",
        "s3.amazonaws.com",
        "ListBuckets",
        "2024-05-01T10:30:00Z",
        "clean",
    ));
    records
}

/// One match rule over the whole window with `when`.
fn rule(i: usize, when: &str) -> Result<RuleSet, String> {
    RuleSet::parse(
        &format!(
            "[[rule]]\nid = \"inject{i:02}\"\ntitle = \"injection\"\nseverity = \"low\"\n\
             kind = \"match\"\ngroup_by = []\n[rule.when]\n{when}\n"
        ),
        "inject.toml",
    )
    .map_err(|e| e.to_string())
}

/// The rule engine's own escape of text into its regex syntax.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Conditions that put each payload in every place a rule's text reaches SQL.
fn hostile_conditions() -> Vec<String> {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = Vec::new();
    for p in PAYLOADS {
        out.push(format!(
            "all = [{{ field = \"eventName\", equals = {} }}]",
            q(p)
        ));
        out.push(format!(
            "all = [{{ field = \"userAgent\", one_of = [{}, \"x\"] }}]",
            q(p)
        ));
        out.push(format!(
            "all = [{{ field = \"errorCode\", prefix = {} }}]",
            q(p)
        ));
        out.push(format!(
            "all = [{{ field = \"requestParameters.bucketName\", equals = {}, ignore_case = true }}]",
            q(p)
        ));
        out.push(format!(
            "all = [{{ field = \"eventName\", wildcard = {} }}]",
            q(&format!("*{}*", p.replace(['*', '?'], "")))
        ));
        out.push(format!(
            "all = [{{ field = \"userAgent\", regex = {} }}]",
            q(&regex_escape(p))
        ));
    }
    out
}

fn for_duckdb(query: String) -> String {
    // Trino's JSON paths carry a mode DuckDB does not read (see tests/athena_rules_sql.rs).
    query.replace("'lax $'", "'$'")
}

#[test]
fn hostile_rule_values_and_odd_settings_are_inert_when_executed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let records = hostile_records();
    write_object(
        dir.path(),
        ACCOUNT,
        "us-east-1",
        "2024-05-01T10:40:00Z",
        &records,
    );
    // A prefix of every character S3's safe set allows besides letters and digits: valid, and
    // written into the DDL's literals.
    let settings = SqlSettings::new(
        &trail(
            "trailhound-fixture",
            "trail(prod)!*-_.x/y",
            None,
            &["us-east-1"],
        ),
        &AthenaConfig {
            partitions: PartitionMode::Projection,
            ..AthenaConfig::default()
        },
    )
    .expect("valid settings");
    let account = AccountId::parse(ACCOUNT).expect("account");
    let window = Window::new(t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z")).expect("window");

    let conditions = hostile_conditions();
    let sets: Vec<RuleSet> = conditions
        .iter()
        .enumerate()
        .map(|(i, w)| rule(i, w).unwrap_or_else(|e| panic!("{w}: {e}")))
        .collect();
    let mut queries: Vec<String> = sets
        .iter()
        .map(|s| {
            RuleQuery::compile(s)
                .and_then(|q| q.render(&settings, &account, &window))
                .map(for_duckdb)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    queries.push(
        settings
            .activity(&account, &window)
            .expect("activity query"),
    );
    // Last: the table is still there and holds every record.
    queries.push(format!(
        "SELECT count(*) AS n FROM \"{}\".\"{}\"",
        settings.database().as_str(),
        settings.table().as_str()
    ));
    let ddl = vec![
        settings.create_database().expect("ddl"),
        settings
            .create_table(PartitionMode::Projection, None)
            .expect("ddl"),
        settings
            .update_table(PartitionMode::Projection, None)
            .expect("ddl"),
    ];
    let results = duckdb::run(dir.path(), &ddl, &queries);

    let mut matched = 0;
    for (i, (set, table)) in sets.iter().zip(&results).enumerate() {
        let rule = &set.rules()[0];
        let want: BTreeSet<String> = records
            .iter()
            .filter(|r| rule.when.holds(r))
            .map(|r| r["eventID"].as_str().unwrap_or("").to_string())
            .collect();
        let got: BTreeSet<String> = (0..table.rows.len())
            .map(|n| row_to_record(table, n).expect("a record row"))
            .map(|r| r["eventID"].as_str().unwrap_or("").to_string())
            .collect();
        // The payload matched itself, literally, and nothing else.
        assert_eq!(got, want, "{}", conditions[i]);
        assert!(!want.contains("clean"), "{}", conditions[i]);
        matched += usize::from(!want.is_empty());
    }
    assert_eq!(
        matched,
        conditions.len(),
        "every hostile condition matched its record"
    );

    // The activity query read the hostile records as data, as the scan does.
    let activity = &results[sets.len()];
    let (rows, _) = activity_rows(activity, &account).expect("activity rows");
    let scan = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(
            FolderSource::open(dir.path())
                .expect("folder")
                .activity(&account, &window),
        )
        .expect("scan");
    let keys = |rows: &[trailhound::source::Activity]| -> BTreeSet<(String, String)> {
        rows.iter()
            .map(|r| (r.principal.key.clone(), r.action.short()))
            .collect()
    };
    assert_eq!(keys(&rows), keys(&scan.rows));
    assert_eq!(rows.len(), records.len());

    let count = &results[sets.len() + 1];
    assert_eq!(count.rows, vec![vec![Some(records.len().to_string())]]);
    eprintln!(
        "rule values: {} injection attempts executed on DuckDB, each matched only itself; the \
         table survived with its {} records",
        conditions.len(),
        records.len()
    );
}

#[test]
fn hostile_rule_keys_and_values_sql_cannot_carry_are_refused_naming_the_rule() {
    let mut refused = 0;
    let cases = [
        r#"all = [{ field = "requestParameters.\"a']) OR 1=1 --\"", equals = "x" }]"#,
        r#"all = [{ field = "requestParameters.\"x\\\"]\"", exists = true }]"#,
        r#"all = [{ field = "requestParameters.\"a b\"", equals = "x" }]"#,
        r#"all = [{ field = "additionalEventData.\"$.x\"", equals = "x" }]"#,
        "all = [{ field = \"eventName\", equals = \"a\\u0000b\" }]",
        "all = [{ field = \"eventName\", one_of = [\"ok\", \"a\\u0000b\"] }]",
    ];
    let settings = SqlSettings::new(
        &trail("trailhound-fixture", "", None, &["us-east-1"]),
        &AthenaConfig::default(),
    )
    .expect("settings");
    let account = AccountId::parse(ACCOUNT).expect("account");
    let window = Window::new(t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z")).expect("window");
    for (i, when) in cases.iter().enumerate() {
        // Refused by the rule checker, or by the SQL compiler naming the rule; never rendered.
        let outcome = match rule(i, when) {
            Err(e) => e,
            Ok(set) => match RuleQuery::compile(&set)
                .and_then(|q| q.render(&settings, &account, &window))
            {
                Ok(sql) => panic!("{when} was rendered:\n{sql}"),
                Err(e) => e.to_string(),
            },
        };
        assert!(
            outcome.contains(&format!("inject{i:02}")),
            "{when}: {outcome}"
        );
        refused += 1;
    }
    eprintln!("rule keys and values: {refused} injection attempts refused by name");
}

// --- SQLite ----------------------------------------------------------------------------------

fn tables(state: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(state).expect("state opens");
    let mut q = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("query");
    q.query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("names")
}

#[test]
fn hostile_record_fields_and_imported_state_are_stored_verbatim_in_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("AWSLogs");
    let mut records = Vec::new();
    for (i, p) in PAYLOADS.iter().enumerate() {
        // A user named by the payload, calling an action named by it, from an agent and an
        // address named by it: every text the store keeps of a call.
        let mut r = user_call(
            ACCOUNT,
            &format!("u{i}{p}"),
            &format!("{i}{p}"),
            "CreateAccessKey",
            &format!("2024-03-01T10:{i:02}:00Z"),
            &format!("{p}{i}"),
        );
        r["userAgent"] = json!(p);
        r["sourceIPAddress"] = json!(p);
        r["errorCode"] = json!(p);
        records.push(r);
    }
    write_object(
        &logs,
        ACCOUNT,
        "us-east-1",
        "2024-03-01T10:30:00Z",
        &records,
    );
    // Imported rule state whose keys are the payloads.
    let mut last: serde_json::Map<String, Value> = serde_json::Map::new();
    for p in PAYLOADS {
        last.insert(p.to_string(), json!(1_709_280_000));
    }
    let item = json!([{
        "RuleId": "Injection keys",
        "Query": json!({"query": {"term": {"eventName.keyword": "CreateAccessKey"}},
            "aggs": {"k": {"terms": {"field": "userIdentity.arn.keyword"}}}}).to_string(),
        "AlertPeriodMinutes": 60, "AlertMinimumEventCount": 1,
        "LastRun": 1_709_280_000, "LastAggResult": last
    }]);
    std::fs::write(dir.path().join("items.json"), item.to_string()).expect("items");

    let run = |args: &[&str]| {
        let out = trailhound()
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // A clean state file first, for the list of tables an intact store has.
    run(&["--state", "clean.db", "baseline"]);
    let intact = tables(&dir.path().join("clean.db"));
    assert!(intact.len() >= 6, "{intact:?}");

    run(&[
        "rules",
        "import",
        "items.json",
        "--out",
        "rules.d/imported.toml",
        "--seed-state",
        ACCOUNT,
    ]);
    let state_file = dir.path().join("trailhound.db");
    let state: String = rusqlite::Connection::open(&state_file)
        .expect("opens")
        .query_row("SELECT group_concat(state, '') FROM rule_state", [], |r| {
            r.get(0)
        })
        .expect("rule state");
    let mut stored = 0;
    for p in PAYLOADS {
        let as_json = serde_json::to_string(p).expect("json");
        assert!(
            state.contains(&as_json[1..as_json.len() - 1]),
            "{p} in {state}"
        );
        stored += 1;
    }
    assert_eq!(tables(&state_file), intact);

    let hunt = [
        "hunt",
        "--logs",
        "AWSLogs",
        "--format",
        "jsonl",
        "--from",
        "2024-03-01T00:00:00Z",
        "--until",
        "2024-03-02T00:00:00Z",
    ];
    run(&hunt);
    assert_eq!(tables(&state_file), intact);
    // Every payload is in the store as it was written, bound, not spliced.
    let conn = rusqlite::Connection::open(&state_file).expect("opens");
    for (i, p) in PAYLOADS.iter().enumerate() {
        let principal = format!("arn:aws:iam::{ACCOUNT}:user/u{i}{p}");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM pairs WHERE principal = ?1 AND instr(action, ?2) > 0",
                rusqlite::params![principal, format!("{i}{p}")],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 1, "{principal} and its action learned once, verbatim");
        stored += 1;
    }
    drop(conn);
    // The next hunt reads it all back: nothing is new.
    let again = run(&hunt);
    assert_eq!(String::from_utf8_lossy(&again.stdout).lines().count(), 0);
    assert_eq!(tables(&dir.path().join("trailhound.db")), intact);
    eprintln!("SQLite: {stored} hostile values stored verbatim, every table intact");
}
