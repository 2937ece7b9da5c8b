//! The binary as a user meets it: help, exit codes, bad input in the logs folder.

mod common;

use std::process::Command;

use common::{user_call, write_object};

fn trailhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trailhound"))
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "hunt", "learn", "deliver", "muster", "account", "tables", "baseline", "demo", "scan",
    ] {
        let out = trailhound().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd}"
        );
    }
}

#[test]
fn a_missing_logs_folder_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = trailhound()
        .current_dir(dir.path())
        .args(["hunt", "--logs", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("nowhere") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn a_bad_config_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[hunt]\nsettle = 10\n").unwrap();
    let out = trailhound()
        .current_dir(dir.path())
        .args(["--config", "c.toml", "baseline"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.toml") && err.contains("settle"), "{err}");
}

#[test]
fn bad_objects_are_named_and_the_good_ones_still_hunted() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("AWSLogs");
    let account = "111122223333";
    let good = write_object(
        &logs,
        account,
        "us-east-1",
        "2024-03-01T10:05:00Z",
        &[
            user_call(
                account,
                "alice",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "2024-03-01T10:01:00Z",
                "g1",
            ),
            // Wrong types and missing fields: counted, not fatal.
            serde_json::json!({"eventTime": 42, "eventSource": "x", "eventName": "y"}),
            serde_json::json!({"eventSource": "s3.amazonaws.com"}),
        ],
    );
    let folder = good.parent().unwrap();
    let truncated = folder.join(format!(
        "{account}_CloudTrail_us-east-1_20240301T1010Z_trunc.json.gz"
    ));
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = folder.join(format!(
        "{account}_CloudTrail_us-east-1_20240301T1015Z_text.json.gz"
    ));
    std::fs::write(&garbage, b"this is not json").unwrap();
    let out_file = dir.path().join("f.jsonl");

    let out = trailhound()
        .current_dir(dir.path())
        .args([
            "hunt",
            "--logs",
            "AWSLogs",
            "--from",
            "2024-03-01T00:00:00Z",
            "--until",
            "2024-03-02T00:00:00Z",
        ])
        .args(["--format", "jsonl", "--out"])
        .arg(&out_file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("trunc.json.gz") && err.contains("gzip"),
        "truncated object named: {err}"
    );
    assert!(
        err.contains("text.json.gz") && err.contains("not JSON"),
        "garbage object named: {err}"
    );
    assert!(err.contains("undecodable"), "bad records counted: {err}");
    let findings = std::fs::read_to_string(&out_file).unwrap();
    assert!(findings.contains("iam:CreateAccessKey"), "{findings}");
    // The same findings went to stdout as JSON lines.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        findings.lines().count()
    );
}

#[test]
fn hunting_the_same_period_twice_reports_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let account = "111122223333";
    write_object(
        &dir.path().join("AWSLogs"),
        account,
        "us-east-1",
        "2024-03-01T10:05:00Z",
        &[user_call(
            account,
            "alice",
            "iam.amazonaws.com",
            "CreateAccessKey",
            "2024-03-01T10:01:00Z",
            "g1",
        )],
    );
    let run = || {
        trailhound()
            .current_dir(dir.path())
            .args(["-q", "hunt", "--logs", "AWSLogs", "--format", "jsonl"])
            .args([
                "--from",
                "2024-03-01T00:00:00Z",
                "--until",
                "2024-03-02T00:00:00Z",
            ])
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(String::from_utf8_lossy(&first.stdout).lines().count(), 1);
    let second = run();
    assert!(second.status.success());
    assert_eq!(String::from_utf8_lossy(&second.stdout).lines().count(), 0);
}

/// Runs `scan --format csv` over `logs`: its summary (stderr), the CSV header and rows.
fn scan(logs: &std::path::Path) -> (String, Vec<String>, Vec<Vec<String>>) {
    let out = trailhound()
        .args(["scan", "--logs"])
        .arg(logs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (stderr, header, rows)
}

/// The number after `label` in the scan summary line that starts with `line`.
fn summary_count(stderr: &str, line: &str, label: &str) -> u64 {
    let l = stderr
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no {line} line in {stderr}"));
    l.split([',', ';', ':'])
        .map(str::trim)
        .find_map(|part| part.strip_suffix(label)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in {l}"))
}

#[test]
fn scan_counts_every_call_of_a_generated_organisation_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = trailhound()
        .args([
            "demo",
            "--generate-only",
            "--days",
            "1",
            "--seed",
            "5",
            "--keep",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (stderr, header, rows) = scan(&dir.path().join("AWSLogs"));
    assert_eq!(header[..3], ["account", "principal", "principal_type"]);
    // Every record the generator wrote is read; each delivered twice counts once.
    let read = summary_count(&stderr, "records:", "read");
    let duplicate = summary_count(&stderr, "records:", "duplicate");
    assert_eq!(read, manifest["records"].as_u64().unwrap(), "{stderr}");
    assert!(
        duplicate > 0,
        "the generator delivers some events twice: {stderr}"
    );
    let counted: u64 = rows.iter().map(|r| r[7].parse::<u64>().unwrap()).sum();
    assert_eq!(counted, read - duplicate, "{stderr}");
    // Every account of the organisation has rows, and nothing else does.
    let accounts: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let expected: std::collections::BTreeSet<&str> = manifest["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(accounts, expected);
}

#[test]
fn scan_of_the_real_logs_shows_the_denied_burst() {
    let logs = common::real_data().join("invictus-stratus-simulation");
    let (_, _, rows) = scan(&logs);
    // The labels: a new role makes 29 ec2:GetPasswordData calls, all denied.
    let burst: Vec<&Vec<String>> = rows.iter().filter(|r| r[5] == "GetPasswordData").collect();
    assert_eq!(burst.len(), 1, "{burst:?}");
    assert_eq!(burst[0][6], "denied");
    assert_eq!(burst[0][7], "29");
    assert_eq!(burst[0][2], "AssumedRole");
}
