//! The Athena SQL of `sql/` is executed, not trusted: rendered by the real renderer, run on
//! DuckDB over CloudTrail objects (after sqlglot turns Athena's dialect into DuckDB's), typed
//! by the same code the Athena source uses, and compared with the direct scan of the same
//! objects. Needs the test venv (`TRAILHOUND_VENV`, set by scripts/test.sh).

mod common;
#[path = "sql/duckdb.rs"]
mod duckdb;

use std::collections::BTreeSet;
use std::path::Path;

use common::{t, user_call, write_object};
use serde_json::json;
use trailhound::cloudtrail::{AccountId, Span};
use trailhound::config::{AthenaConfig, PartitionMode, TrailConfig};
use trailhound::demo::{generate, DemoOptions};
use trailhound::source::athena::{activity_rows, Day, SqlSettings};
use trailhound::source::scan::FolderSource;
use trailhound::source::{Activity, ActivitySource, Samples, ScanReport};
use trailhound::window::Window;

/// The table as `trailhound tables` makes it, and the statements rendered for it.
struct Table {
    sql: SqlSettings,
    mode: PartitionMode,
    /// With projection: accounts listed in the table; `None` injects the account.
    listed: Option<Vec<AccountId>>,
}

fn settings(regions: &[&str], org: Option<&str>, mode: PartitionMode) -> Table {
    let trail = TrailConfig {
        bucket: "trailhound-fixture".into(),
        prefix: String::new(),
        org_id: org.map(str::to_string),
        regions: regions.iter().map(|r| r.to_string()).collect(),
    };
    let athena = AthenaConfig {
        partitions: mode,
        ..AthenaConfig::default()
    };
    Table {
        sql: SqlSettings::new(&trail, &athena).expect("valid settings"),
        mode,
        listed: None,
    }
}

/// The table DDL `trailhound tables` runs.
fn table_ddl(t: &Table) -> Vec<String> {
    let listed = t.listed.as_deref();
    vec![
        t.sql.create_database().unwrap(),
        t.sql.create_table(t.mode, listed).unwrap(),
        t.sql.update_table(t.mode, listed).unwrap(),
    ]
}

/// Both sources keep the `Samples::CAP` smallest values. What they count as left out differs:
/// the scan counts sightings of values it did not keep, the query distinct values it did not
/// keep (it sees them all at once); so that count compares as "some" or "none".
fn comparable(s: &Samples) -> Samples {
    Samples {
        values: s.values.clone(),
        more: s.more.min(1),
    }
}

fn comparable_row(a: &Activity) -> Activity {
    Activity {
        regions: comparable(&a.regions),
        source_ips: comparable(&a.source_ips),
        user_agents: comparable(&a.user_agents),
        error_codes: comparable(&a.error_codes),
        event_ids: comparable(&a.event_ids),
        ..a.clone()
    }
}

/// What both sources must agree on in their reports.
fn losses(r: &ScanReport) -> (u64, u64, u64, u64, u64) {
    (
        r.records,
        r.records_used(),
        r.records_duplicate,
        r.records_bad.values().sum(),
        r.records_no_principal.values().sum(),
    )
}

/// Runs the activity query of every (account, window) on DuckDB and on the scan; asserts
/// equal rows. Returns the number of rows compared.
async fn assert_sql_equals_scan(
    logs: &Path,
    settings: &Table,
    cases: &[(AccountId, Window)],
) -> usize {
    let queries: Vec<String> = cases
        .iter()
        .map(|(a, w)| settings.sql.activity(a, w).unwrap())
        .collect();
    let results = duckdb::run(logs, &table_ddl(settings), &queries);
    let folder = FolderSource::open(logs).unwrap();
    let mut compared = 0;
    for ((account, window), table) in cases.iter().zip(results) {
        let (athena_rows, athena_report) =
            activity_rows(&table, account).unwrap_or_else(|e| panic!("{account} {window}: {e}"));
        let scan = folder.activity(account, window).await.unwrap();
        let want: Vec<Activity> = scan.rows.iter().map(comparable_row).collect();
        let got: Vec<Activity> = athena_rows.iter().map(comparable_row).collect();
        assert_eq!(got.len(), want.len(), "row count of {account} in {window}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{account} in {window}");
        }
        assert_eq!(
            losses(&athena_report),
            losses(&scan.report),
            "records, used, duplicates, bad, no principal of {account} in {window}"
        );
        compared += got.len();
    }
    compared
}

/// Copies the flat published set into CloudTrail's layout, by what each name says.
fn invictus_in_layout(root: &Path) -> (AccountId, usize) {
    let flat = common::real_data().join("invictus-stratus-simulation/CloudTrail");
    let mut account = None;
    let mut n = 0;
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
        n += 1;
    }
    (account.expect("named objects in the invictus set"), n)
}

#[tokio::test]
async fn activity_sql_equals_scan_on_the_invictus_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let (account, objects) = invictus_in_layout(dir.path());
    assert_eq!(objects, 55);
    let w = |a: &str, b: &str| Window::new(t(a), t(b)).unwrap();
    let cases: Vec<(AccountId, Window)> = [
        w("2023-07-10T00:00:00Z", "2023-07-11T00:00:00Z"),
        w("2023-07-10T11:00:00Z", "2023-07-10T12:00:00Z"),
        w("2023-07-10T12:00:00Z", "2023-07-10T13:00:00Z"),
        // Bounds inside minutes and between deliveries.
        w("2023-07-10T11:54:30Z", "2023-07-10T12:23:00Z"),
        w("2023-07-10T13:00:00Z", "2023-07-10T14:00:00Z"),
    ]
    .into_iter()
    .map(|win| (account.clone(), win))
    .collect();
    let s = settings(
        &["us-east-1", "us-west-2", "eu-west-1"],
        None,
        PartitionMode::Projection,
    );
    let compared = assert_sql_equals_scan(dir.path(), &s, &cases).await;
    eprintln!(
        "invictus: {compared} activity rows equal across {} windows",
        cases.len()
    );
    assert!(
        compared > 200,
        "the set yields hundreds of rows, got {compared}"
    );
}

#[tokio::test]
async fn activity_sql_equals_scan_on_a_generated_organization() {
    let dir = tempfile::tempdir().unwrap();
    let end = t("2024-03-02T09:00:00Z");
    let manifest = generate(
        dir.path(),
        &DemoOptions {
            seed: 7,
            days: 2,
            end,
        },
    )
    .unwrap();
    let org = std::fs::read_dir(dir.path().join("AWSLogs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with("o-"))
        .expect("an organization trail layout");
    let folder = FolderSource::open(dir.path()).unwrap();
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
    let midnight = t("2024-03-02T00:00:00Z");
    let hour = Span::hours(1);
    let mut cases = Vec::new();
    for account in &manifest.accounts {
        assert!(folder.delivery_span(account).is_some());
        for (start, end) in [
            (midnight.saturating_sub(hour), midnight),
            (midnight, midnight.saturating_add(hour)),
            // Across midnight: two day partitions in one query.
            (
                midnight.saturating_sub(Span::minutes(30)),
                midnight.saturating_add(Span::minutes(30)),
            ),
            // The attack hour, and a whole day of routine.
            (manifest.hunt.0, manifest.hunt.1),
            (t("2024-03-01T00:00:00Z"), midnight),
        ] {
            cases.push((account.clone(), Window::new(start, end).unwrap()));
        }
    }
    let s = settings(&regions, Some(&org), PartitionMode::Projection);
    let compared = assert_sql_equals_scan(dir.path(), &s, &cases).await;
    eprintln!(
        "generated organization ({} accounts, {} records): {compared} activity rows equal across {} windows",
        manifest.accounts.len(),
        manifest.records,
        cases.len()
    );
    assert!(compared > 100, "got {compared}");
}

const ACCOUNT: &str = "111122223333";

fn role_call(session: &str, name: &str, time: &str, id: &str) -> serde_json::Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLE:{session}"),
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/deploy/{session}"),
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                    "arn": format!("arn:aws:iam::{ACCOUNT}:role/ci/deploy"),
                    "accountId": ACCOUNT, "userName": "deploy"},
                "attributes": {"creationDate": time, "mfaAuthenticated": "false"}
            }
        },
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "Boto3/1.34.0 md/Botocore#1.34.0, exec-env/CI",
        "errorCode": if name == "RunInstances" { json!("Client.UnauthorizedOperation") } else { json!(null) },
        "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-1"}]}},
        "eventID": id,
        "readOnly": name.starts_with("Describe"),
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "ec2.eu-west-1.amazonaws.com"}
    })
}

/// Midnight, a late object, duplicates, records that are not activity, and the identity
/// shapes the query groups specially.
fn edge_logs(root: &Path) {
    let mut login = user_call(
        ACCOUNT,
        "mallory",
        "signin.amazonaws.com",
        "ConsoleLogin",
        "2024-03-01T23:58:00Z",
        "login-1",
    );
    login["additionalEventData"] = json!({"LoginTo": "https://console.aws.amazon.com", "MobileVersion": "No", "MFAUsed": "No"});
    login["responseElements"] = json!({"ConsoleLogin": "Success"});
    let mut throttled = user_call(
        ACCOUNT,
        "alice",
        "iam.amazonaws.com",
        "ListRoles",
        "2024-03-01T23:50:00Z",
        "thr-1",
    );
    throttled["errorCode"] = json!("ThrottlingException");
    let mut missing_name = user_call(
        ACCOUNT,
        "alice",
        "iam.amazonaws.com",
        "ListRoles",
        "2024-03-01T23:51:00Z",
        "bad-1",
    );
    missing_name.as_object_mut().unwrap().remove("eventName");
    let mut service = user_call(
        ACCOUNT,
        "x",
        "kms.amazonaws.com",
        "Decrypt",
        "2024-03-01T23:52:00Z",
        "svc-1",
    );
    service["userIdentity"] =
        json!({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"});
    let mut anonymous = user_call(
        ACCOUNT,
        "x",
        "s3.amazonaws.com",
        "GetObject",
        "2024-03-01T23:53:00Z",
        "anon-1",
    );
    anonymous.as_object_mut().unwrap().remove("userIdentity");

    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-01T23:45:00Z",
        &[
            user_call(
                ACCOUNT,
                "alice",
                "s3.amazonaws.com",
                "ListBuckets",
                "2024-03-01T23:41:00Z",
                "e1",
            ),
            role_call("run-1", "DescribeInstances", "2024-03-01T23:42:00Z", "r1"),
            role_call("run-2", "DescribeInstances", "2024-03-01T23:43:00Z", "r2"),
            role_call("run-2", "RunInstances", "2024-03-01T23:44:00Z", "r3"),
            throttled,
            missing_name,
            service,
            anonymous,
        ],
    );
    // Delivered after midnight, holding events from before it (a late object), and a copy of
    // an event already delivered in the object before.
    write_object(
        root,
        ACCOUNT,
        "us-east-1",
        "2024-03-02T00:05:00Z",
        &[
            user_call(
                ACCOUNT,
                "alice",
                "iam.amazonaws.com",
                "ListUsers",
                "2024-03-01T23:12:00Z",
                "late-1",
            ),
            user_call(
                ACCOUNT,
                "alice",
                "s3.amazonaws.com",
                "ListBuckets",
                "2024-03-01T23:41:00Z",
                "e1",
            ),
            login,
        ],
    );
    write_object(
        root,
        ACCOUNT,
        "eu-west-1",
        "2024-03-02T00:35:00Z",
        &[
            role_call("run-3", "DescribeInstances", "2024-03-02T00:31:00Z", "r4"),
            user_call(
                ACCOUNT,
                "alice",
                "s3.amazonaws.com",
                "ListBuckets",
                "2024-03-02T00:32:00Z",
                "e2",
            ),
        ],
    );
}

fn find<'a>(rows: &'a [Activity], name: &str) -> Option<&'a Activity> {
    rows.iter().find(|r| r.action.name == name)
}

#[tokio::test]
async fn window_across_midnight_reads_the_late_object_once_and_counts_every_loss() {
    let dir = tempfile::tempdir().unwrap();
    edge_logs(dir.path());
    let account = AccountId::parse(ACCOUNT).unwrap();
    let before = Window::new(t("2024-03-01T23:00:00Z"), t("2024-03-02T00:00:00Z")).unwrap();
    let after = Window::new(t("2024-03-02T00:00:00Z"), t("2024-03-02T01:00:00Z")).unwrap();
    let across = Window::new(t("2024-03-01T23:30:00Z"), t("2024-03-02T00:30:00Z")).unwrap();
    let s = settings(&["us-east-1", "eu-west-1"], None, PartitionMode::Projection);
    let cases = vec![
        (account.clone(), before),
        (account.clone(), after),
        (account.clone(), across),
    ];
    assert_sql_equals_scan(dir.path(), &s, &cases).await;
    // The same with the account listed in the table instead of injected.
    let listed = Table {
        listed: Some(vec![account.clone()]),
        ..settings(&["us-east-1", "eu-west-1"], None, PartitionMode::Projection)
    };
    assert_sql_equals_scan(dir.path(), &listed, &cases).await;

    let queries: Vec<String> = cases
        .iter()
        .map(|(a, w)| s.sql.activity(a, w).unwrap())
        .collect();
    let results = duckdb::run(dir.path(), &table_ddl(&s), &queries);
    let (before_rows, before_report) = activity_rows(&results[0], &account).unwrap();
    let (after_rows, after_report) = activity_rows(&results[1], &account).unwrap();

    // The late event is in the window its object was delivered in, not its eventTime's.
    assert!(find(&before_rows, "ListUsers").is_none());
    let late = find(&after_rows, "ListUsers").expect("late event after midnight");
    assert_eq!(late.first_time, t("2024-03-01T23:12:00Z"));
    // Role sessions are one principal; the denied call is its own outcome.
    let describe = find(&before_rows, "DescribeInstances").unwrap();
    assert_eq!(
        describe.principal.key,
        format!("arn:aws:iam::{ACCOUNT}:role/ci/deploy")
    );
    assert_eq!((describe.count, describe.read_only), (2, Some(true)));
    assert_eq!(
        find(&before_rows, "RunInstances").unwrap().outcome.name(),
        "denied"
    );
    assert_eq!(
        find(&before_rows, "ListRoles").unwrap().outcome.name(),
        "throttled"
    );
    assert_eq!(
        find(&before_rows, "Decrypt").unwrap().principal.key,
        "service:cloudtrail.amazonaws.com"
    );
    assert_eq!(
        find(&after_rows, "ConsoleLogin")
            .unwrap()
            .logins_without_mfa,
        1
    );
    assert_eq!(before_report.records_bad.values().sum::<u64>(), 1);
    assert_eq!(before_report.records_no_principal.values().sum::<u64>(), 1);
    // The copy of e1 in the later object is a duplicate only within one window's objects.
    assert_eq!(after_report.records_duplicate, 0);
    let (_, across_report) = activity_rows(&results[2], &account).unwrap();
    assert_eq!(across_report.records_duplicate, 1);
}

#[tokio::test]
async fn managed_partitions_cover_exactly_what_the_window_needs() {
    let dir = tempfile::tempdir().unwrap();
    edge_logs(dir.path());
    let account = AccountId::parse(ACCOUNT).unwrap();
    let s = settings(&["us-east-1", "eu-west-1"], None, PartitionMode::Managed);
    for window in [
        Window::new(t("2024-03-01T23:30:00Z"), t("2024-03-02T00:30:00Z")).unwrap(),
        Window::new(t("2024-03-02T00:00:00Z"), t("2024-03-02T01:00:00Z")).unwrap(),
    ] {
        // Only the window's own partitions exist, as in a hunt.
        let mut ddl = table_ddl(&s);
        ddl.push(
            s.sql
                .add_partitions(&account, &Day::covering(&window))
                .unwrap(),
        );
        let query = s.sql.activity(&account, &window).unwrap();
        let results = duckdb::run(dir.path(), &ddl, &[query]);
        let (rows, _) = activity_rows(&results[0], &account).unwrap();
        let scan = FolderSource::open(dir.path())
            .unwrap()
            .activity(&account, &window)
            .await
            .unwrap();
        let got: Vec<Activity> = rows.iter().map(comparable_row).collect();
        let want: Vec<Activity> = scan.rows.iter().map(comparable_row).collect();
        assert_eq!(got, want, "managed mode in {window}");
        assert!(!got.is_empty());
    }
}

/// Delivery minutes just before, at and after the bounds of the windows below, on both sides
/// of midnight.
const AROUND_MIDNIGHT: [&str; 15] = [
    "2024-03-01T22:59:00Z",
    "2024-03-01T23:00:00Z",
    "2024-03-01T23:01:00Z",
    "2024-03-01T23:29:00Z",
    "2024-03-01T23:30:00Z",
    "2024-03-01T23:31:00Z",
    "2024-03-01T23:59:00Z",
    "2024-03-02T00:00:00Z",
    "2024-03-02T00:01:00Z",
    "2024-03-02T00:29:00Z",
    "2024-03-02T00:30:00Z",
    "2024-03-02T00:31:00Z",
    "2024-03-02T00:59:00Z",
    "2024-03-02T01:00:00Z",
    "2024-03-02T01:01:00Z",
];

/// The windows the minutes above surround: ending at midnight, across it, and with bounds
/// inside a minute (the start rounds up into the next day).
fn windows_around_midnight() -> Vec<Window> {
    [
        ("2024-03-01T23:00:00Z", "2024-03-02T00:00:00Z"),
        ("2024-03-01T23:30:00Z", "2024-03-02T00:30:00Z"),
        ("2024-03-01T23:59:30Z", "2024-03-02T01:00:30Z"),
    ]
    .into_iter()
    .map(|(a, b)| Window::new(t(a), t(b)).unwrap())
    .collect()
}

/// The ranges of `"$path"` the window queries carry choose, on their own, exactly the objects
/// of the window: none of the minute before either bound, all of the minutes at and after the
/// start, none at the end, in both regions, none of another account. Then the whole activity
/// query still equals the scan.
#[tokio::test]
async fn path_ranges_alone_choose_exactly_the_windows_objects() {
    let dir = tempfile::tempdir().unwrap();
    let other = "444455556666";
    let placed = common::objects_at(
        dir.path(),
        &[ACCOUNT, other],
        &["us-east-1", "eu-west-1"],
        &AROUND_MIDNIGHT,
    );
    let s = settings(&["us-east-1", "eu-west-1"], None, PartitionMode::Projection);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let windows = windows_around_midnight();
    let mut queries = Vec::new();
    for w in &windows {
        let paths = s.sql.delivered_paths(&account, w).unwrap();
        assert!(s.sql.activity(&account, w).unwrap().contains(&paths));
        // No partition predicate: the ranges alone, over every object of the table.
        queries.push(format!(
            "SELECT DISTINCT \"$path\" AS path FROM \"trailhound\".\"cloudtrail\" WHERE {paths} ORDER BY path"
        ));
    }
    let results = duckdb::run(dir.path(), &table_ddl(&s), &queries);
    for (w, table) in windows.iter().zip(&results) {
        let got: Vec<String> = table
            .rows
            .iter()
            .map(|r| r[0].clone().expect("a path"))
            .collect();
        let mut want: Vec<String> = placed
            .iter()
            .filter(|p| p.account == ACCOUNT && w.contains(p.delivered))
            .map(|p| format!("s3://trailhound-fixture/{}", p.key))
            .collect();
        want.sort();
        assert_eq!(got, want, "objects the ranges choose in {w}");
        let regions: BTreeSet<&str> = placed
            .iter()
            .filter(|p| want.iter().any(|k| k.ends_with(&p.key)))
            .map(|p| p.region.as_str())
            .collect();
        assert_eq!(regions.len(), 2, "both regions in {w}");
    }
    let cases: Vec<(AccountId, Window)> =
        windows.into_iter().map(|w| (account.clone(), w)).collect();
    let compared = assert_sql_equals_scan(dir.path(), &s, &cases).await;
    assert!(
        compared >= 3 * 4,
        "every window holds objects, got {compared}"
    );
}
