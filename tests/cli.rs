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
        "hunt", "learn", "deliver", "muster", "account", "tables", "baseline", "demo",
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
