//! The rules compiled to Athena SQL (`src/source/athena/rules_sql.rs`, `sql/rule_events.sql`)
//! are executed, not trusted: rendered, run on DuckDB over CloudTrail objects (after sqlglot
//! turns Athena's dialect into DuckDB's), and the records they return are fed to a RuleEngine.
//! The hits must equal those of feeding every record of the same objects to a RuleEngine
//! directly. Needs the test venv (`TRAILHOUND_VENV`, set by scripts/test.sh).

mod common;
#[path = "sql/duckdb.rs"]
mod duckdb;

use std::collections::BTreeSet;
use std::path::Path;

use common::{t, user_call, write_object};
use serde_json::{json, Value};
use trailhound::cloudtrail::reader::{decompress, split_records};
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::{AthenaConfig, PartitionMode, TrailConfig};
use trailhound::demo::{generate, DemoOptions};
use trailhound::detect::rules::{RuleEngine, RuleOutput, RuleSet};
use trailhound::source::athena::rules_sql::{row_to_record, rule_records, RuleQuery};
use trailhound::source::athena::{ResultTable, SqlSettings};
use trailhound::source::scan::FolderSource;
use trailhound::window::Window;

fn settings(regions: &[&str], org: Option<&str>) -> SqlSettings {
    let trail = TrailConfig {
        bucket: "trailhound-fixture".into(),
        prefix: String::new(),
        org_id: org.map(str::to_string),
        regions: regions.iter().map(|r| r.to_string()).collect(),
    };
    let athena = AthenaConfig {
        partitions: PartitionMode::Projection,
        ..AthenaConfig::default()
    };
    SqlSettings::new(&trail, &athena).expect("valid settings")
}

/// The one difference between the text Athena gets and the text DuckDB runs: Trino's SQL/JSON
/// paths need a mode (`json_query(x, 'lax $')`), and sqlglot passes the path to DuckDB as it
/// is, where `lax $` is no path at all. `'$'` is the same path without the mode.
fn for_duckdb(query: String) -> String {
    assert!(query.contains("json_query(") && query.contains("'lax $'"));
    query.replace("'lax $'", "'$'")
}

fn run(root: &Path, sql: &SqlSettings, queries: Vec<String>) -> Vec<ResultTable> {
    let queries: Vec<String> = queries.into_iter().map(for_duckdb).collect();
    duckdb::run(root, &table_ddl(sql), &queries)
}

fn table_ddl(sql: &SqlSettings) -> Vec<String> {
    vec![
        sql.create_database().unwrap(),
        sql.create_table(PartitionMode::Projection, None).unwrap(),
        sql.update_table(PartitionMode::Projection, None).unwrap(),
    ]
}

/// Every record of every object of `account` under `root`, as the engine reads records.
fn all_records(root: &Path, account: &AccountId) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let marker = format!("/{account}/CloudTrail/");
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !path.to_string_lossy().contains(&marker) {
                continue;
            }
            let bytes = decompress(std::fs::read(&path).unwrap()).unwrap();
            let split = split_records(&bytes);
            assert!(split.error.is_none(), "{}", path.display());
            for raw in split.records {
                out.push(serde_json::from_str(raw.get()).unwrap());
            }
        }
    }
    out
}

fn run_engine<'a>(rules: &RuleSet, records: impl IntoIterator<Item = &'a Value>) -> RuleOutput {
    let mut engine = RuleEngine::new(rules);
    for r in records {
        engine.observe(r);
    }
    engine.finish()
}

/// A window holding every object of the account.
fn whole(folder: &FolderSource, account: &AccountId) -> Window {
    let (first, last) = folder.delivery_span(account).expect("objects");
    Window::new(
        first.floor_to(Span::minutes(1)),
        last.floor_to(Span::minutes(1))
            .saturating_add(Span::minutes(1)),
    )
    .unwrap()
}

/// Runs the rule query of every account over the whole of its objects and compares the
/// engine's output on the returned rows with its output on every record. Returns the number of
/// (hits, candidates) compared, the rows returned and the records there are.
fn assert_sql_rules_equal_direct(
    root: &Path,
    sql: &SqlSettings,
    rules: &RuleSet,
    accounts: &[AccountId],
) -> (usize, usize, usize, usize) {
    let folder = FolderSource::open(root).unwrap();
    let query = RuleQuery::compile(rules).unwrap();
    let windows: Vec<Window> = accounts.iter().map(|a| whole(&folder, a)).collect();
    let queries: Vec<String> = accounts
        .iter()
        .zip(&windows)
        .map(|(a, w)| query.render(sql, a, w).unwrap())
        .collect();
    let results = run(root, sql, queries);
    let (mut hits, mut candidates, mut rows, mut total) = (0, 0, 0, 0);
    for (account, table) in accounts.iter().zip(&results) {
        let texts = rule_records(table).unwrap();
        let returned: Vec<Value> = texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let direct = all_records(root, account);
        let via_sql = run_engine(rules, &returned);
        let want = run_engine(rules, &direct);
        assert_eq!(via_sql.hits, want.hits, "hits of {account}");
        assert_eq!(
            via_sql.term_candidates, want.term_candidates,
            "new-terms candidates of {account}"
        );
        // Exact filtering: the rows are the records some rule holds for, no more.
        assert_eq!(
            returned.len() as u64,
            want.stats.matched,
            "{account}: rows returned and records the rules match"
        );
        hits += want.hits.len();
        candidates += want.term_candidates.len();
        rows += returned.len();
        total += direct.len();
    }
    (hits, candidates, rows, total)
}

/// Copies the flat published set into CloudTrail's layout, by what each name says.
fn invictus_in_layout(root: &Path) -> AccountId {
    let flat = common::real_data().join("invictus-stratus-simulation/CloudTrail");
    let mut account = None;
    for entry in std::fs::read_dir(&flat).expect("invictus set") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(parsed) = trailhound::cloudtrail::layout::parse_object_name(&name) else {
            continue;
        };
        let folder = root.join(trailhound::cloudtrail::layout::day_prefix(
            None,
            &parsed.account,
            &parsed.region,
            parsed.delivered,
        ));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(&path, folder.join(&name)).unwrap();
        account = Some(parsed.account);
    }
    account.expect("named objects in the invictus set")
}

#[test]
fn shipped_rules_via_sql_equal_direct_on_the_invictus_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let account = invictus_in_layout(dir.path());
    let sql = settings(&["us-east-1", "us-west-2", "eu-west-1"], None);
    let rules = RuleSet::shipped().unwrap();
    let (hits, candidates, rows, total) =
        assert_sql_rules_equal_direct(dir.path(), &sql, &rules, &[account]);
    eprintln!(
        "invictus: {hits} hits, {candidates} candidates equal; {rows} of {total} records returned"
    );
    assert!(rows < total, "the WHERE clause filters");
    assert!(hits + candidates > 0, "the simulation trips some rule");
}

#[test]
fn shipped_rules_via_sql_equal_direct_on_a_generated_organization() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(
        dir.path(),
        &DemoOptions {
            seed: 7,
            days: 2,
            end: t("2024-03-02T09:00:00Z"),
        },
    )
    .unwrap();
    let org = std::fs::read_dir(dir.path().join("AWSLogs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with("o-"))
        .expect("an organization trail layout");
    let regions: BTreeSet<String> = std::fs::read_dir(
        dir.path()
            .join("AWSLogs")
            .join(&org)
            .join(manifest.accounts[0].as_str())
            .join("CloudTrail"),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
    .collect();
    let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
    let sql = settings(&regions, Some(&org));
    let rules = RuleSet::shipped().unwrap();
    let (hits, candidates, rows, total) =
        assert_sql_rules_equal_direct(dir.path(), &sql, &rules, &manifest.accounts);
    eprintln!(
        "generated organization: {hits} hits, {candidates} candidates equal; {rows} of {total} \
         records returned"
    );
    assert!(rows < total, "the WHERE clause filters");
    assert!(
        hits > 0 && candidates > 0,
        "{hits} hits, {candidates} candidates"
    );
}

// --- Each operator, executed ----------------------------------------------------------------

const ACCOUNT: &str = "111122223333";

fn with(mut record: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        record[k] = v.clone();
    }
    record
}

/// Records with the shapes the operators meet: strings, numbers as numbers and as strings,
/// nulls, arrays at the end of a path and along it, quotes and LIKE metacharacters.
fn shapes() -> Vec<Value> {
    let call = |name: &str, id: &str| {
        user_call(
            ACCOUNT,
            "alice",
            "s3.amazonaws.com",
            name,
            "2024-05-01T10:00:00Z",
            id,
        )
    };
    vec![
        with(
            call("GetObject", "e1"),
            json!({
                "readOnly": true,
                "errorCode": "AccessDenied",
                "userAgent": "it's a [test] 100%",
                "requestParameters": {"bucketName": "My_Bucket%", "key": "a/b.txt", "n": 10,
                    "s": "10", "f": 2.5, "flag": true, "nul": null, "arr": ["a", "b"],
                    "list": [{"v": 1}, {"v": 7}], "k": "x'y", "dotted.key": "d"},
                "resources": [{"ARN": "arn:aws:s3:::b1", "type": "AWS::S3::Bucket"}],
                "userIdentity": {"type": "AssumedRole", "principalId": "AROA1:s",
                    "arn": "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForX/s",
                    "accountId": ACCOUNT, "sessionContext": {"sessionIssuer": {"type": "Role",
                    "arn": "arn:aws:iam::111122223333:role/aws-service-role/x/AWSServiceRoleForX"}}}
            }),
        ),
        with(
            call("PutObject", "e2"),
            json!({
                "requestParameters": {"bucketName": "MyXBucketZZ", "n": "7.5", "s": 10,
                    "arr": [], "k": "xy", "deep": [[{"v": 9}], [["x"]]], "list": {"v": 8}},
                "resources": [],
            }),
        ),
        with(
            call("ConsoleLogin", "e3"),
            json!({
                "eventSource": "signin.amazonaws.com",
                "errorCode": "Client.UnauthorizedOperation",
                "requestParameters": null,
                "responseElements": {"ConsoleLogin": "Failure"},
                "additionalEventData": {"MFAUsed": "No"},
            }),
        ),
        with(
            call("getobject", "e4"),
            json!({
                "errorCode": "SomethingNotAuthorizedHere",
                "requestParameters": {"n": 10.0, "s": "1e1", "bucketName": "my_bucket%x",
                    "key": "A/B.TXT"},
            }),
        ),
        with(
            call("RunInstances", "e5"),
            json!({
                "eventSource": "ec2.amazonaws.com",
                "requestParameters": {"instancesSet": {"items": [{"minCount": 5}, {"minCount": 1}]},
                    "instanceType": "p3.16xlarge"},
                "responseElements": {"instancesSet": {"items": [{}, {}, {}]}},
            }),
        ),
        json!({
            "eventVersion": "1.08",
            "eventTime": "2024-05-01T10:00:01Z",
            "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole",
            "eventID": "e6",
            "recipientAccountId": ACCOUNT,
        }),
    ]
}

/// (when, exact): an exact case must return exactly the records the rule holds for; the
/// others (arrays inside arrays) may return more, never fewer.
const CASES: &[(&str, bool)] = &[
    // A pattern reads an object as its compact JSON text, as the Elasticsearch-era rules
    // that matched `*Failure*` against `responseElements` expect.
    (
        r#"all = [{ field = "responseElements", wildcard = "*Failure*" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "responseElements", wildcard = "*failure*", ignore_case = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", equals = "GetObject" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", equals = "getobject", ignore_case = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", one_of = ["PutObject", "ConsoleLogin"] }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", wildcard = "*Object" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", wildcard = "?et*" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.bucketName", wildcard = "My_Bucket%" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.bucketName", wildcard = "my_bucket%*", ignore_case = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.bucketName", prefix = "My_" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "userAgent", prefix = "it's a [test] 100" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "errorCode", regex = '(Client\.)?(AccessDenied.*|UnauthorizedOperation|.*NotAuthorized.*)' }]"#,
        true,
    ),
    (
        r#"all = [{ field = "errorCode", regex = "accessdenied", ignore_case = true }]"#,
        true,
    ),
    (r#"all = [{ field = "errorCode", regex = "Access" }]"#, true),
    (
        r#"all = [{ field = "userAgent", regex = ".*it's a \\[t.st\\] \\d+%$" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.key", regex = '[a-z]/\w\.txt' }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.key", regex = '[a-z]/\w\.txt', ignore_case = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.instanceType", regex = '[a-z0-9-]+\.(\d*xlarge|metal.*)' }]"#,
        true,
    ),
    (r#"all = [{ field = "errorCode", exists = true }]"#, true),
    (r#"all = [{ field = "errorCode", exists = false }]"#, true),
    (
        r#"all = [{ field = "requestParameters.nul", exists = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters", exists = false }]"#,
        true,
    ),
    (
        r#"all = [{ field = "userIdentity.sessionContext", exists = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "userIdentity", exists = false }]"#,
        true,
    ),
    (r#"all = [{ field = "requestParameters.n", gt = 8 }]"#, true),
    (
        r#"all = [{ field = "requestParameters.n", lte = 7.5 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.s", gte = 10 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.n", lt = 100 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.n", equals = 10 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.s", equals = "10" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.s", equals = 10 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.f", equals = 2.5 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.flag", equals = true }]"#,
        true,
    ),
    (r#"all = [{ field = "readOnly", equals = true }]"#, true),
    (r#"all = [{ field = "readOnly", equals = false }]"#, true),
    (
        r#"all = [{ field = "requestParameters.arr", length_gte = 2 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.arr", length_eq = 0 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "responseElements.instancesSet.items", length_lte = 3 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.k", equals = "x'y" }]"#,
        true,
    ),
    (
        r#"all = [{ field = 'requestParameters."dotted.key"', equals = "d" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "resources.ARN", prefix = "arn:aws:s3" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "resources.type", exists = false }]"#,
        true,
    ),
    (r#"all = [{ field = "resources", length_eq = 0 }]"#, true),
    (
        r#"all = [{ field = "userIdentity.sessionContext.sessionIssuer.arn", wildcard = "*:role/aws-service-role/*" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "responseElements.ConsoleLogin", equals = "Failure" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventSource", equals = "s3.amazonaws.com" }]
none = [{ field = "errorCode", exists = true }, { all = [{ field = "readOnly", equals = false }] }]"#,
        true,
    ),
    (
        r#"any = [{ field = "eventName", equals = "AssumeRole" }, { field = "requestParameters.n", gt = 9 }]"#,
        true,
    ),
    // Injections through values: each must run and match nothing.
    (
        r#"all = [{ field = "eventName", equals = "x') OR TRUE OR ('" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", wildcard = "x' OR TRUE --" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", prefix = "x'); DROP TABLE t; --" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", regex = "x'\\) OR TRUE --" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.k", one_of = ["\\'", "'' OR ''=''"] }]"#,
        true,
    ),
    (
        r#"all = [{ field = "eventName", equals = "{{table}}" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "userAgent", regex = "it.s a [[{]t\\w+?] 10{2}%" }]"#,
        true,
    ),
    // Arrays along the path or at its end: any element, as the engine does.
    (
        r#"all = [{ field = "requestParameters.arr", equals = "b" }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.arr", one_of = ["z", "a"] }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.list.v", gte = 5 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.list.v", equals = 1 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.list", length_eq = 2 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.instancesSet.items.minCount", gte = 5 }]"#,
        true,
    ),
    (
        r#"all = [{ field = "responseElements.instancesSet.items", length_gte = 3 }]"#,
        true,
    ),
    (
        r#"none = [{ field = "requestParameters.list.v", exists = true }]"#,
        true,
    ),
    (
        r#"all = [{ field = "requestParameters.list.w", exists = false }]"#,
        true,
    ),
    // Arrays inside arrays: SQL cannot tell, so it returns the records and the engine decides.
    (
        r#"all = [{ field = "requestParameters.deep.v", gte = 5 }]"#,
        false,
    ),
    (
        r#"all = [{ field = "requestParameters.deep", equals = "x" }]"#,
        false,
    ),
];

fn rule(i: usize, when: &str) -> RuleSet {
    RuleSet::parse(
        &format!(
            "[[rule]]\nid = \"c{i:02}\"\ntitle = \"case\"\nseverity = \"low\"\nkind = \"match\"\n\
             group_by = []\n[rule.when]\n{when}\n"
        ),
        "cases.toml",
    )
    .unwrap_or_else(|e| panic!("case {i}: {e}"))
}

fn ids<'a>(records: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    records
        .into_iter()
        .map(|r| r["eventID"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn every_operator_filters_in_sql_as_the_engine_does() {
    let dir = tempfile::tempdir().unwrap();
    let records = shapes();
    write_object(
        dir.path(),
        ACCOUNT,
        "us-east-1",
        "2024-05-01T10:05:00Z",
        &records,
    );
    let sql = settings(&["us-east-1"], None);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let window = Window::new(t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z")).unwrap();
    let sets: Vec<RuleSet> = CASES
        .iter()
        .enumerate()
        .map(|(i, (w, _))| rule(i, w))
        .collect();
    let queries: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            RuleQuery::compile(s)
                .and_then(|q| q.render(&sql, &account, &window))
                .unwrap_or_else(|e| panic!("case {i} ({}): {e}", CASES[i].0))
        })
        .collect();
    let results = run(dir.path(), &sql, queries);
    let mut matching_cases = 0;
    for (i, ((when, exact), (set, table))) in
        CASES.iter().zip(sets.iter().zip(&results)).enumerate()
    {
        let rule = &set.rules()[0];
        let want = ids(records.iter().filter(|r| rule.when.holds(r)));
        matching_cases += usize::from(!want.is_empty());
        let rows: Vec<Value> = (0..table.rows.len())
            .map(|n| row_to_record(table, n).unwrap())
            .collect();
        let got = ids(&rows);
        if *exact {
            assert_eq!(got, want, "case {i}: {when}");
        } else {
            assert!(
                got.is_superset(&want),
                "case {i}: {when}: {got:?} lacks some of {want:?}"
            );
        }
        // The rebuilt records answer the condition as the originals do.
        let again = ids(rows.iter().filter(|r| rule.when.holds(r)));
        assert_eq!(again, want, "case {i}, rebuilt records: {when}");
    }
    // Most cases match some records: the equalities above are not between empty sets.
    assert!(
        matching_cases >= 40,
        "{matching_cases} cases match something"
    );
}

#[test]
fn rebuilt_records_keep_the_shape_rules_and_principals_read() {
    let dir = tempfile::tempdir().unwrap();
    let records = shapes();
    write_object(
        dir.path(),
        ACCOUNT,
        "us-east-1",
        "2024-05-01T10:05:00Z",
        &records,
    );
    let sql = settings(&["us-east-1"], None);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let window = Window::new(t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z")).unwrap();
    let set = rule(0, r#"all = [{ field = "eventID", exists = true }]"#);
    let query = RuleQuery::compile(&set)
        .unwrap()
        .render(&sql, &account, &window)
        .unwrap();
    let results = run(dir.path(), &sql, vec![query]);
    let rows: Vec<Value> = (0..results[0].rows.len())
        .map(|n| row_to_record(&results[0], n).unwrap())
        .collect();
    assert_eq!(rows.len(), records.len());
    let e1 = rows.iter().find(|r| r["eventID"] == "e1").unwrap();
    assert_eq!(e1["readOnly"], json!(true));
    assert_eq!(
        e1["userIdentity"]["sessionContext"]["sessionIssuer"]["type"],
        "Role"
    );
    assert_eq!(e1["eventTime"], "2024-05-01T10:00:00Z");
    let e6 = rows.iter().find(|r| r["eventID"] == "e6").unwrap();
    assert!(e6["userIdentity"].is_null());
}

/// The rule query reads the window's objects and no others: objects at the minutes just before,
/// at and after both bounds, on both sides of midnight, in two regions and for two accounts;
/// every record matches the rule, so the rows are exactly the records of the window's objects.
#[test]
fn rule_query_reads_exactly_the_objects_delivered_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let minutes = [
        "2024-03-01T23:29:00Z",
        "2024-03-01T23:30:00Z",
        "2024-03-01T23:31:00Z",
        "2024-03-01T23:59:00Z",
        "2024-03-02T00:00:00Z",
        "2024-03-02T00:01:00Z",
        "2024-03-02T00:29:00Z",
        "2024-03-02T00:30:00Z",
        "2024-03-02T00:31:00Z",
    ];
    let regions = ["us-east-1", "eu-west-1"];
    let placed = common::objects_at(dir.path(), &[ACCOUNT, "444455556666"], &regions, &minutes);
    let sql = settings(&regions, None);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let every = rule(
        0,
        r#"all = [{ field = "eventSource", equals = "iam.amazonaws.com" }]"#,
    );
    let windows: Vec<Window> = [
        ("2024-03-01T23:30:00Z", "2024-03-02T00:30:00Z"),
        ("2024-03-01T23:30:00Z", "2024-03-02T00:00:00Z"),
        ("2024-03-01T23:59:30Z", "2024-03-02T00:30:30Z"),
    ]
    .into_iter()
    .map(|(a, b)| Window::new(t(a), t(b)).unwrap())
    .collect();
    let query = RuleQuery::compile(&every).unwrap();
    let queries: Vec<String> = windows
        .iter()
        .map(|w| query.render(&sql, &account, w).unwrap())
        .collect();
    let results = run(dir.path(), &sql, queries);
    for (w, table) in windows.iter().zip(&results) {
        let rows: Vec<Value> = (0..table.rows.len())
            .map(|n| row_to_record(table, n).unwrap())
            .collect();
        let want: BTreeSet<String> = placed
            .iter()
            .filter(|p| p.account == ACCOUNT && w.contains(p.delivered))
            .map(|p| p.event_id.clone())
            .collect();
        assert!(want.len() >= 6, "{w}");
        assert_eq!(ids(&rows), want, "records of the objects in {w}");
        assert_eq!(rows.len(), want.len(), "each record once in {w}");
    }
}

/// Athena refuses query strings over 262,144 bytes; the shipped pack must leave room for the
/// rules people add.
#[test]
fn the_shipped_query_fits_athena_with_room_to_spare() {
    let sql = settings(&["us-east-1"], None);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let window = Window::new(t("2024-05-01T10:00:00Z"), t("2024-05-03T11:00:00Z")).unwrap();
    let query = RuleQuery::compile(&RuleSet::shipped().unwrap())
        .unwrap()
        .render(&sql, &account, &window)
        .unwrap();
    assert!(query.len() < 262_144 / 8, "{} bytes", query.len());
    assert!(query.contains("delivery_date IN ('2024/05/01', '2024/05/02', '2024/05/03')"));
}
