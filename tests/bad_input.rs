//! A corpus of bad input, generated in a temporary folder, read by the real binary beside good
//! logs: every bad file is a clear error or a counted, named skip, the run completes, and what
//! the good files give (scan rows, hunt findings) is exactly what they give alone.
//!
//! Already proved in tests/cli.rs and not repeated here: a missing logs folder, one wrong type
//! in a config, and that a truncated and a text object are named. Here every field the reader
//! decodes gets the wrong JSON type, and the comparison with the good files alone is exact.
//!
//! Bad records carry principals named `mallory-...`, so that whatever they add is told apart
//! from what the good files give.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use common::{user_call, write_object};

const A: &str = "111122223333";
const B: &str = "444455556666";
const FROM: &str = "2024-03-01T00:00:00Z";
const UNTIL: &str = "2024-03-02T00:00:00Z";

fn trailhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trailhound"))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

fn time(minute: u32) -> String {
    format!("2024-03-01T10:{minute:02}:00Z")
}

/// The folder a CloudTrail object of account `account` delivered on 2024-03-01 lives in.
fn day_folder(logs: &Path, account: &str) -> PathBuf {
    let dir = logs.join(format!("{account}/CloudTrail/us-east-1/2024/03/01"));
    std::fs::create_dir_all(&dir).expect("day folder");
    dir
}

/// Writes `bytes` as a CloudTrail-named object of account A delivered at 10:`minute`.
fn named_object(logs: &Path, minute: u32, tag: &str, bytes: &[u8]) -> PathBuf {
    let path = day_folder(logs, A).join(format!(
        "{A}_CloudTrail_us-east-1_20240301T10{minute:02}Z_{tag}.json.gz"
    ));
    std::fs::write(&path, bytes).expect("write object");
    path
}

/// The good logs: two accounts, several objects and a loose JSON-lines export.
fn write_good(logs: &Path) {
    let calls = [
        (A, 5, "alice", "iam.amazonaws.com", "CreateAccessKey"),
        (A, 5, "alice", "s3.amazonaws.com", "ListBuckets"),
        (A, 10, "carol", "cloudtrail.amazonaws.com", "StopLogging"),
        (A, 10, "alice", "iam.amazonaws.com", "CreateUser"),
        (B, 7, "dave", "iam.amazonaws.com", "CreateLoginProfile"),
        (B, 7, "dave", "ec2.amazonaws.com", "DescribeInstances"),
    ];
    let mut by_object: BTreeMap<(&str, u32), Vec<Value>> = BTreeMap::new();
    for (i, (account, minute, user, source, name)) in calls.iter().enumerate() {
        by_object
            .entry((account, *minute))
            .or_default()
            .push(user_call(
                account,
                user,
                source,
                name,
                &time(minute - 1),
                &format!("good-{i}"),
            ));
    }
    for ((account, minute), records) in &by_object {
        write_object(
            logs,
            account,
            "us-east-1",
            &format!("2024-03-01T10:{minute:02}:00Z"),
            records,
        );
    }
    // A file without a CloudTrail name: its records are windowed by eventTime.
    let export: String = (0..3)
        .map(|i| {
            user_call(
                A,
                "erin",
                "kms.amazonaws.com",
                "ScheduleKeyDeletion",
                &time(20 + i),
                &format!("export-{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(logs.join("export.jsonl"), export).expect("write export");
}

/// A record of `mallory-<tag>` in account A, an always-alert call so that it would be a
/// finding if it were read as a call.
fn mallory(tag: &str, minute: u32) -> Value {
    user_call(
        A,
        &format!("mallory-{tag}"),
        "iam.amazonaws.com",
        "CreateAccessKey",
        &time(minute),
        &format!("mallory-{tag}"),
    )
}

fn set(mut record: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut record;
    for key in &path[..path.len() - 1] {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    record
}

/// What a bad input must produce.
#[derive(Debug)]
enum Expect {
    /// The file is named in the summary with a reason holding this text.
    Named(&'static str),
    /// A row of `mallory-<tag>` exists, and `check` holds for it (scan's JSON row).
    Row(String, fn(&Value) -> bool),
    /// No row of `mallory-<tag>`.
    NoRow(String),
}

struct Case {
    what: String,
    path: Option<PathBuf>,
    expect: Expect,
}

fn samples_empty(row: &Value, key: &str) -> bool {
    row[key]["values"].as_array().is_some_and(Vec::is_empty)
}

/// A context field: a tag naming its record, the field's path, a value of the wrong type, and
/// what the call's row must show.
type ContextField = (
    &'static str,
    &'static [&'static str],
    Value,
    fn(&Value) -> bool,
);

/// Context fields the reader reads, with a value of the wrong type each, and what the call's
/// row must show: the field read as absent, the call kept.
fn context_fields() -> Vec<ContextField> {
    vec![
        ("eventid", &["eventID"], json!(42), |r| {
            samples_empty(r, "event_ids")
        }),
        ("region", &["awsRegion"], json!(true), |r| {
            samples_empty(r, "regions")
        }),
        ("ip", &["sourceIPAddress"], json!({"v4": "10.0.0.1"}), |r| {
            samples_empty(r, "source_ips")
        }),
        ("agent", &["userAgent"], json!(["aws-cli"]), |r| {
            samples_empty(r, "user_agents")
        }),
        (
            "error",
            &["errorCode"],
            json!({"code": "AccessDenied"}),
            |r| r["outcome"] == "success" && samples_empty(r, "error_codes"),
        ),
        ("readonly", &["readOnly"], json!(7), |r| {
            r["read_only"].is_null()
        }),
        ("recipient", &["recipientAccountId"], json!([A]), |r| {
            r["count"] == 1
        }),
        ("eventtype", &["eventType"], json!(null), |r| {
            r["count"] == 1
        }),
        ("mfa", &["additionalEventData"], json!("MFAUsed=No"), |r| {
            r["logins_without_mfa"] == 0
        }),
        (
            "mfaused",
            &["additionalEventData", "MFAUsed"],
            json!(0),
            |r| r["logins_without_mfa"] == 0,
        ),
        ("uiarn", &["userIdentity", "arn"], json!({"a": 1}), |r| {
            r["principal"]["type"] == "IAMUser"
        }),
        (
            "uiaccount",
            &["userIdentity", "accountId"],
            json!(1.5),
            |r| r["count"] == 1,
        ),
        ("uikey", &["userIdentity", "accessKeyId"], json!([]), |r| {
            r["count"] == 1
        }),
        (
            "uiprincipalid",
            &["userIdentity", "principalId"],
            json!(false),
            |r| r["count"] == 1,
        ),
        (
            "uisession",
            &["userIdentity", "sessionContext"],
            json!("s"),
            |r| r["count"] == 1,
        ),
        (
            "uiissuer",
            &["userIdentity", "sessionContext", "sessionIssuer"],
            json!(3),
            |r| r["count"] == 1,
        ),
        (
            "uiinvoked",
            &["userIdentity", "invokedBy"],
            json!({}),
            |r| r["count"] == 1,
        ),
        (
            "uionbehalf",
            &["userIdentity", "onBehalfOf"],
            json!([1]),
            |r| r["count"] == 1,
        ),
    ]
}

/// Writes every bad input into `logs` (which already holds the good logs) and says what each
/// must produce. `root` says whether this process can read a file whatever its mode.
fn write_bad(logs: &Path, root: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case = |what: &str, path: Option<PathBuf>, expect: Expect| {
        cases.push(Case {
            what: what.to_string(),
            path,
            expect,
        })
    };

    // A gzip stream cut in half: nothing of it is read.
    let whole = gzip(
        json!({"Records": [mallory("trunc", 30)]})
            .to_string()
            .as_bytes(),
    );
    let p = named_object(logs, 30, "trunc", &whole[..whole.len() / 2]);
    case("truncated gzip", Some(p), Expect::Named("gzip"));
    case(
        "truncated gzip",
        None,
        Expect::NoRow("mallory-trunc".into()),
    );

    // A valid gzip stream of garbage, and raw bytes that are not UTF-8.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let p = named_object(logs, 31, "gzgarbage", &gzip(&garbage));
    case("gzip of garbage", Some(p), Expect::Named("not JSON"));
    let p = named_object(logs, 32, "binary", &[0x80, 0xff, 0xfe, b'{', 0xc3]);
    case("non-UTF-8 bytes", Some(p), Expect::Named("invalid UTF-8"));

    // JSON lines with a byte that is not UTF-8 inside the second record: the first is kept,
    // the break is named, nothing after it is read.
    let mut lines = Vec::new();
    for i in 1..=3 {
        let mut line = mallory(&format!("utf8-{i}"), 33).to_string().into_bytes();
        if i == 2 {
            let at = line.len() / 2;
            line.insert(at, 0xff);
        }
        lines.extend(line);
        lines.push(b'\n');
    }
    let p = named_object(logs, 33, "utf8lines", &lines);
    case(
        "non-UTF-8 in a record",
        Some(p),
        Expect::Named("invalid UTF-8"),
    );
    case(
        "non-UTF-8 in a record",
        None,
        Expect::Row("mallory-utf8-1".into(), |r| r["count"] == 1),
    );
    case(
        "non-UTF-8 in a record",
        None,
        Expect::NoRow("mallory-utf8-3".into()),
    );

    // A file name that is not UTF-8 holds a good record: it is read like any other.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"export-\xff\xfe.json");
        let record = mallory("filename", 34).to_string();
        std::fs::write(logs.join(name), record).expect("write non-UTF-8 name");
        case(
            "non-UTF-8 file name",
            None,
            Expect::Row("mallory-filename".into(), |r| r["count"] == 1),
        );
    }

    // Zero bytes, as a CloudTrail object and as a loose file.
    let p = named_object(logs, 35, "empty", b"");
    case("zero-byte object", Some(p), Expect::Named("empty file"));
    let p = logs.join("empty.json");
    std::fs::write(&p, b"").expect("write empty");
    case(
        "zero-byte loose file",
        Some(p),
        Expect::Named("no record names an account"),
    );

    // Every identifying field of the wrong type: each record is undecodable, counted by reason.
    let mut records = Vec::new();
    for (field, value) in [
        ("eventTime", json!(1709287200)),
        ("eventTime", json!("yesterday")),
        ("eventSource", json!(["iam.amazonaws.com"])),
        ("eventSource", json!(null)),
        ("eventName", json!({"name": "CreateAccessKey"})),
        ("eventName", json!(7)),
    ] {
        records.push(set(mallory(&format!("id-{field}"), 36), &[field], value));
    }
    // Every context field of the wrong type: read as absent, the call kept.
    for (tag, path, value, check) in context_fields() {
        let mut record = set(mallory(tag, 36), path, value);
        if tag.starts_with("mfa") {
            record["eventName"] = json!("ConsoleLogin");
            record["eventSource"] = json!("signin.amazonaws.com");
        }
        records.push(record);
        case(
            &format!("{} of the wrong type", path.join(".")),
            None,
            Expect::Row(format!("mallory-{tag}"), check),
        );
    }
    // userIdentity and its type of the wrong type.
    records.push(set(
        mallory("identity", 36),
        &["userIdentity"],
        json!("alice"),
    ));
    case(
        "userIdentity of the wrong type",
        None,
        Expect::NoRow("mallory-identity".into()),
    );
    records.push(set(
        mallory("uitype", 36),
        &["userIdentity", "type"],
        json!(1),
    ));
    case(
        "userIdentity.type of the wrong type",
        None,
        Expect::Row("mallory-uitype".into(), |r| {
            r["principal"]["type"] == "Unknown"
        }),
    );
    records.push(set(
        mallory("uiname", 36),
        &["userIdentity", "userName"],
        json!([1]),
    ));
    case(
        "userIdentity.userName of the wrong type",
        None,
        Expect::Row("mallory-uiname".into(), |r| r["count"] == 1),
    );
    let p = named_object(
        logs,
        36,
        "types",
        &gzip(json!({ "Records": records }).to_string().as_bytes()),
    );
    case(
        "wrong types",
        Some(p.clone()),
        Expect::NoRow("mallory-id-eventTime".into()),
    );

    // An unreadable object. Root reads it anyway, so then its record is a call like any other.
    let p = named_object(
        logs,
        38,
        "perm",
        &gzip(
            json!({ "Records": [mallory("perm", 38)] })
                .to_string()
                .as_bytes(),
        ),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    }
    if root {
        case(
            "unreadable object (as root: readable, so read)",
            None,
            Expect::Row("mallory-perm".into(), |r| r["count"] == 1),
        );
    } else {
        case("unreadable object", Some(p), Expect::Named("cannot read"));
        case(
            "unreadable object",
            None,
            Expect::NoRow("mallory-perm".into()),
        );
    }

    // Symbolic links: one back to the logs folder (a cycle through the real folder), and one
    // to itself, which no walk can resolve.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(".", logs.join(A).join("loop")).expect("symlink loop");
        let own = logs.join("self.json");
        std::os::unix::fs::symlink(&own, &own).expect("self symlink");
        case(
            "symlink to itself",
            Some(own),
            Expect::Named("symbolic links"),
        );
    }
    cases
}

/// Whether this process reads files whatever their mode (root, or a capability).
fn reads_anything(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").expect("write probe");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let readable = std::fs::read(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    readable
}

/// `scan --format jsonl` over `logs`: its output, and the rows.
fn scan(logs: &Path) -> (Output, Vec<Value>) {
    let out = trailhound()
        .args(["scan", "--format", "jsonl", "--logs"])
        .arg(logs)
        .output()
        .expect("scan runs");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    (out, rows)
}

/// `hunt` over the day with a fresh state file: its output, and the findings.
fn hunt(dir: &Path, logs: &Path, state: &str) -> (Output, Vec<Value>) {
    let out = trailhound()
        .current_dir(dir)
        .args([
            "hunt", "--format", "jsonl", "--state", state, "--from", FROM, "--until", UNTIL,
        ])
        .arg("--logs")
        .arg(logs)
        .output()
        .expect("hunt runs");
    // `detected_at` is the run's own clock: two runs compared may straddle a second.
    let findings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut finding: Value = serde_json::from_str(l).expect("a JSON finding");
            let stamp = finding
                .as_object_mut()
                .and_then(|f| f.remove("detected_at"));
            assert!(stamp.is_some_and(|s| s.is_string()), "{l}");
            finding
        })
        .collect();
    (out, findings)
}

fn is_mallory(v: &Value) -> bool {
    v.to_string().contains("mallory-")
}

fn row_of<'a>(rows: &'a [Value], who: &str) -> Option<&'a Value> {
    rows.iter().find(|r| {
        r["principal"]["key"]
            .as_str()
            .is_some_and(|k| k.contains(&format!("/{who}")) || k.ends_with(who))
    })
}

/// The lines of the summary naming unreadable objects: path → reason.
fn named_in(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("unreadable "))
        .filter_map(|l| l.split_once(": "))
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect()
}

#[test]
fn every_bad_input_is_named_or_counted_and_the_good_logs_give_what_they_give_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good");
    let mixed = dir.path().join("mixed");
    write_good(&good);
    write_good(&mixed);
    let root = reads_anything(dir.path());
    if root {
        eprintln!(
            "note: this process reads files whatever their mode (root): the unreadable-file \
             assertion is skipped, and the chmod 000 object is checked as read instead"
        );
    }
    let cases = write_bad(&mixed, root);

    // scan: rows of the good logs are the same, bad files are named, bad records counted.
    let (alone, alone_rows) = scan(&good);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let (out, rows) = scan(&mixed);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the scan completes: {stderr}");
    let kept: Vec<&Value> = rows.iter().filter(|r| !is_mallory(r)).collect();
    let alone_kept: Vec<&Value> = alone_rows.iter().collect();
    assert_eq!(
        kept, alone_kept,
        "the good logs' rows are those they give alone"
    );
    assert_eq!(alone_rows.len(), 7, "{alone_rows:?}");

    let named = named_in(&stderr);
    let mut produced = Vec::new();
    for case in &cases {
        match &case.expect {
            Expect::Named(reason) => {
                let path = case.path.as_ref().expect("a named case has a path");
                let shown = path.display().to_string();
                let found = named.iter().find(|(p, _)| *p == shown);
                assert!(
                    found.is_some_and(|(_, r)| r.contains(reason)),
                    "{}: {shown} is named with `{reason}`; named: {named:#?}",
                    case.what
                );
                produced.push(format!(
                    "{}: named, {}",
                    case.what,
                    found.map_or("", |f| &f.1)
                ));
            }
            Expect::Row(who, check) => {
                let row = row_of(&rows, who);
                assert!(
                    row.is_some_and(check),
                    "{}: the row of {who} is kept as expected: {row:?}",
                    case.what
                );
                produced.push(format!("{}: {who} read as one call", case.what));
            }
            Expect::NoRow(who) => {
                assert!(
                    row_of(&rows, who).is_none(),
                    "{}: {who} is not read",
                    case.what
                );
                produced.push(format!("{}: {who} not read", case.what));
            }
        }
    }
    // Nothing is named that is not in the corpus.
    let expected_named = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Named(_)))
        .count();
    assert_eq!(named.len(), expected_named, "{named:#?}");
    // The six records whose identifying fields have the wrong type are undecodable, each
    // counted under its reason; the one without a usable userIdentity has no principal.
    let undecodable: u64 = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("undecodable ("))
        .filter_map(|l| l.rsplit_once("): "))
        .map(|(_, n)| n.trim().parse::<u64>().expect("a count"))
        .sum();
    assert_eq!(undecodable, 6, "{stderr}");
    assert!(
        stderr.contains("without principal (record has no userIdentity): 1"),
        "{stderr}"
    );
    produced.push(format!(
        "eventTime, eventSource, eventName of the wrong type (6 records): undecodable, {undecodable} counted by reason"
    ));
    eprintln!("bad inputs:\n  {}", produced.join("\n  "));

    // hunt: the findings of the good logs are those they give alone; the run completes.
    let (alone, alone_findings) = hunt(dir.path(), &good, "alone.db");
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let (out, findings) = hunt(dir.path(), &mixed, "mixed.db");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the hunt completes: {stderr}");
    let kept: Vec<&Value> = findings.iter().filter(|f| !is_mallory(f)).collect();
    let alone_kept: Vec<&Value> = alone_findings.iter().collect();
    assert!(!alone_kept.is_empty());
    assert_eq!(
        kept, alone_kept,
        "the good logs' findings are those they give alone"
    );
    for (path, _) in named {
        assert!(stderr.contains(&path), "hunt names {path} too: {stderr}");
    }
}

/// Scans the good logs alone and with `add` written beside them; asserts the good rows are
/// unchanged and returns the mixed scan's summary and rows.
fn scan_beside_good(add: impl FnOnce(&Path)) -> (String, Vec<Value>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good");
    let mixed = dir.path().join("mixed");
    write_good(&good);
    write_good(&mixed);
    add(&mixed);
    let (_, alone) = scan(&good);
    let (out, rows) = scan(&mixed);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "the scan completes: {stderr}");
    let kept: Vec<&Value> = rows.iter().filter(|r| !is_mallory(r)).collect();
    assert_eq!(kept, alone.iter().collect::<Vec<_>>(), "{stderr}");
    (stderr, rows)
}

#[test]
fn a_100_mb_record_is_read_as_one_call() {
    let big = set(
        mallory("big", 37),
        &["requestParameters", "policyDocument"],
        json!("a".repeat(100 << 20)),
    );
    let object = gzip(json!({ "Records": [big] }).to_string().as_bytes());
    let (stderr, rows) = scan_beside_good(|logs| {
        named_object(logs, 37, "big", &object);
    });
    let row = row_of(&rows, "mallory-big").expect("the big record's row");
    assert_eq!(row["count"], 1);
    assert!(named_in(&stderr).is_empty(), "{stderr}");
}

#[test]
fn deep_nesting_is_a_named_skip_or_an_undecodable_record_not_a_crash() {
    const DEPTH: usize = 100_000;
    let deep = format!("{}1{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let mut path = None;
    let (stderr, rows) = scan_beside_good(|logs| {
        // An object that is nothing but opening brackets.
        path = Some(named_object(
            logs,
            40,
            "brackets",
            "[".repeat(DEPTH).as_bytes(),
        ));
        // Records nesting that deep in a field the reader skips and in one it reads.
        let skipped = set(
            mallory("deep-skipped", 41),
            &["requestParameters"],
            json!(null),
        );
        let read = set(mallory("deep-read", 41), &["userIdentity"], json!(null));
        let text = json!({ "Records": [skipped, read] })
            .to_string()
            .replacen(
                "\"requestParameters\":null",
                &format!("\"requestParameters\":{deep}"),
                1,
            )
            .replacen(
                "\"userIdentity\":null",
                &format!("\"userIdentity\":{deep}"),
                1,
            );
        named_object(logs, 41, "deeprecords", text.as_bytes());
    });
    let path = path.expect("written").display().to_string();
    let named = named_in(&stderr);
    assert!(
        named
            .iter()
            .any(|(p, r)| *p == path && r.contains("not JSON")),
        "{stderr}"
    );
    assert_eq!(named.len(), 1, "{stderr}");
    // serde_json skips a deep value without recursing: too deep in a member the hunt skips,
    // the call is kept as any other; a `userIdentity` that is a deep array instead of an
    // object reads as absent, and the record is counted as one without a principal.
    assert!(row_of(&rows, "mallory-deep-read").is_none(), "{rows:?}");
    let kept = row_of(&rows, "mallory-deep-skipped").expect("the skipped-depth record's row");
    assert_eq!(kept["count"], 1);
    assert!(
        stderr.contains("without principal (record has no userIdentity): 1"),
        "{stderr}"
    );
}

#[test]
fn a_config_with_unknown_keys_and_wrong_types_names_every_problem_and_hunts_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_good(&dir.path().join("AWSLogs"));
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[hunt]\nsettle = 10\nsetle = \"10m\"\n\n[severity]\nnew_service = \"ten\"\n\n\
         [surprise]\nx = 1\n\n[[sinks.hec]]\nurl = \"https://splunk.example.com:8088\"\n\
         token_env = \"T\"\nmax_events = [500]\n",
    )
    .expect("write config");
    let out = trailhound()
        .current_dir(dir.path())
        .args([
            "--config", "bad.toml", "hunt", "--from", FROM, "--until", UNTIL,
        ])
        .output()
        .expect("hunt runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was hunted");
    assert!(
        !dir.path().join("trailhound.db").exists(),
        "no state was written"
    );
    // Each problem at its line, with its key; all of them in one run.
    for (line, key) in [
        (2, "`hunt.settle`"),
        (3, "`hunt.setle`: unknown field"),
        (6, "`severity.new_service`"),
        (8, "`surprise`: unknown field"),
        (14, "`sinks.hec.max_events`"),
    ] {
        assert!(
            stderr.contains(&format!("line {line}, column")) && stderr.contains(key),
            "line {line} {key}: {stderr}"
        );
    }
    assert!(stderr.contains("bad.toml has 5 problem(s)"), "{stderr}");
}
