//! `trailhound rules` on the real binary: importing the seed's rules straight from their
//! DynamoDB table in the emulator, checking the written file, and listing what runs.

mod moto;

use std::collections::HashMap;
use std::process::Command;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use serde_json::{json, Value};

fn attribute(typed: &Value) -> AttributeValue {
    let (kind, v) = typed.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "S" => AttributeValue::S(v.as_str().unwrap().to_string()),
        "N" => AttributeValue::N(v.as_str().unwrap().to_string()),
        "BOOL" => AttributeValue::Bool(v.as_bool().unwrap()),
        "M" => AttributeValue::M(
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        ),
        "L" => AttributeValue::L(v.as_array().unwrap().iter().map(attribute).collect()),
        other => panic!("the fixture has no {other} attributes"),
    }
}

fn trailhound(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    cmd.current_dir(dir).envs(moto::child_env());
    cmd
}

#[tokio::test]
async fn rules_import_reads_the_old_rule_table() {
    let table = format!("es-rules-{}", moto::unique(8));
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk().await);
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("RuleId")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("RuleId")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable in the emulator");
    let fixture: Value = serde_json::from_str(include_str!("fixtures/es_rules/dynamodb_scan.json"))
        .expect("the scan fixture");
    for item in fixture["Items"].as_array().unwrap() {
        let item: HashMap<String, AttributeValue> = item
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .expect("PutItem");
    }

    let dir = tempfile::tempdir().unwrap();
    let out = trailhound(dir.path())
        .args([
            "rules",
            "import",
            "--table",
            &table,
            "--out",
            "mine/imported.toml",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("wrote 3 rules"), "{stderr}");
    assert!(
        stderr.contains("compact JSON text"),
        "the failed-auth rule's approximation is noted: {stderr}"
    );

    let check = trailhound(dir.path())
        .args(["rules", "check", "mine"])
        .output()
        .unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("3 rules, all valid"));

    // Listed with the shipped pack once the folder is in the config.
    std::fs::write(dir.path().join("c.toml"), "[rules]\nfolders = [\"mine\"]\n").unwrap();
    let list = trailhound(dir.path())
        .args(["--config", "c.toml", "rules", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    for id in [
        "new-users-launching-ec2-instance",
        "new-user-created-s3-bucket",
        "failed-user-authentication",
        "console-signin-failures",
    ] {
        assert!(listed.contains(id), "{id} in:\n{listed}");
    }

    // A table that does not exist is a one-line error naming it.
    let missing = trailhound(dir.path())
        .args([
            "rules",
            "import",
            "--table",
            "no-such-table",
            "--out",
            "x.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-table"));
}

/// `rules import --seed-state` carries the old system's memory over: a key it saw within
/// AlertPeriodMinutes is not new on the first hunt, a key it never saw is, and a key whose
/// period has run out is left out and counted. `rules state` shows what was stored.
#[test]
fn imported_memory_keeps_recent_keys_from_being_new() {
    let account = "861828696892";
    let now = trailhound::cloudtrail::Timestamp::now().unix();
    let mut fixture: Value =
        serde_json::from_str(include_str!("fixtures/es_rules/dynamodb_scan.json")).unwrap();
    let mut item = fixture["Items"][0].take();
    item["LastAggResult"] = json!({"M": {
        "AKIARECENT": {"N": (now - 3600).to_string()},
        "AKIAANCIENT": {"N": "1595122200"},
    }});
    item["LastRun"] = json!({"N": (now - 3600).to_string()});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("items.json"),
        json!({ "Items": [item] }).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[rules]\nshipped = false\nfolders = [\"mine\"]\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = trailhound(dir.path())
            .args(["--config", "c.toml", "--state", "state.db"])
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, stderr) = run(&[
        "rules",
        "import",
        "items.json",
        "--out",
        "mine/imported.toml",
        "--seed-state",
        account,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("1 keys remembered, 1 keys already past their history"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(&["rules", "state", "--account", account]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("new-users-launching-ec2-instance"),
        "{stdout}"
    );
    assert!(stdout.contains("AKIARECENT"), "{stdout}");

    // An hour of launches: the remembered key and a new one.
    let time = |offset: i64| trailhound::cloudtrail::Timestamp::from_unix(now + offset).to_string();
    let launch = |key: &str, id: &str| {
        json!({
            "eventVersion": "1.08", "eventTime": time(-1800), "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "awsRegion": "us-east-1", "eventID": id,
            "recipientAccountId": account, "sourceIPAddress": "198.51.100.7",
            "userIdentity": {"type": "IAMUser", "accessKeyId": key, "userName": id,
                "arn": format!("arn:aws:iam::{account}:user/{id}"), "accountId": account}
        })
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("launches.json"),
        json!({"Records": [launch("AKIARECENT", "old-hand"), launch("AKIAFRESH", "newcomer")]})
            .to_string(),
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "hunt",
        "--logs",
        "logs",
        "--format",
        "jsonl",
        "--from",
        &time(-7200),
        "--until",
        &time(60),
    ]);
    assert!(code == Some(0) || code == Some(1), "{stderr}");
    let rule_keys: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|f| f["rule"] == "new-users-launching-ec2-instance")
        .map(|f| f["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rule_keys.len(), 1, "{rule_keys:?}\n{stderr}");
    assert!(rule_keys[0].contains("AKIAFRESH"), "{rule_keys:?}");
}
