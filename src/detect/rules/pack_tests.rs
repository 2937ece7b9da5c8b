//! Each rule of the shipped pack, on hand-written records: it fires on what it is for and stays
//! quiet on the nearest miss.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::{RuleEngine, RuleHit, RuleSet, TermCandidate};
use crate::cloudtrail::Timestamp;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A record by `alice` at `seconds` after a fixed instant; `extra`'s top-level keys replace the
/// defaults, and a `null` removes one.
fn rec(seconds: i64, source: &str, name: &str, extra: Value) -> Value {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut r = json!({
        "eventVersion": "1.08",
        "eventTime": Timestamp::from_unix(1_688_990_000 + seconds).to_string(),
        "eventSource": format!("{source}.amazonaws.com"),
        "eventName": name,
        "eventID": format!("00000000-0000-0000-0000-{id:012}"),
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.13.0",
        "recipientAccountId": "111122223333",
        "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
            "userName": "alice"},
    });
    let map = r.as_object_mut().unwrap();
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        if v.is_null() {
            map.remove(&k);
        } else {
            map.insert(k, v);
        }
    }
    r
}

fn role(name: &str) -> Value {
    json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:session",
        "arn": format!("arn:aws:sts::111122223333:assumed-role/{name}/session"),
        "sessionContext": {"sessionIssuer": {"type": "Role",
            "arn": format!("arn:aws:iam::111122223333:role/{name}")}}})
}

fn run(rule: &str, records: &[Value]) -> (Vec<RuleHit>, Vec<TermCandidate>) {
    let set = RuleSet::shipped().unwrap();
    assert!(set.get(rule).is_some(), "no rule {rule}");
    let mut engine = RuleEngine::new(&set);
    records.iter().for_each(|r| engine.observe(r));
    let out = engine.finish();
    (
        out.hits.into_iter().filter(|h| h.rule_id == rule).collect(),
        out.term_candidates
            .into_iter()
            .filter(|c| c.rule_id == rule)
            .collect(),
    )
}

fn hits(rule: &str, records: &[Value]) -> Vec<RuleHit> {
    run(rule, records).0
}

fn many(n: i64, step: i64, make: impl Fn(i64) -> Value) -> Vec<Value> {
    (0..n).map(|i| make(i * step)).collect()
}

/// Every shipped rule is exercised below.
const TESTED: &[&str] = &[
    "console-signin-failures",
    "console-login-without-mfa",
    "console-logins-from-several-ips",
    "root-activity",
    "logging-critical-change",
    "failed-api-calls",
    "secrets-many-reads",
    "iam-many-users-created",
    "iam-many-users-deleted",
    "ec2-many-instances-one-request",
    "ec2-large-instances-one-request",
    "ec2-many-instances-launched",
    "ec2-launches-in-several-regions",
    "ec2-many-instances-terminated",
    "ec2-many-instances-terminated-one-request",
    "first-ec2-launch",
    "s3-mass-copy",
    "s3-mass-delete",
    "s3-bucket-enumeration",
    "first-s3-bucket-creation",
    "first-dynamodb-activity",
];

#[test]
fn every_shipped_rule_has_a_test_here() {
    let set = RuleSet::shipped().unwrap();
    let shipped: BTreeSet<&str> = set.rules().iter().map(|r| r.id.as_str()).collect();
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    assert_eq!(shipped, tested);
}

fn login(seconds: i64, result: &str, extra: Value) -> Value {
    let mut r = rec(
        seconds,
        "signin",
        "ConsoleLogin",
        json!({"eventType": "AwsConsoleSignIn",
            "responseElements": {"ConsoleLogin": result},
            "additionalEventData": {"MFAUsed": "Yes"}}),
    );
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        r[k] = v;
    }
    r
}

#[test]
fn four_sign_in_failures_in_five_minutes_fire() {
    let four = many(4, 90, |s| login(s, "Failure", json!({})));
    let found = hits("console-signin-failures", &four);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peak.as_ref().unwrap().count, 4);
    // Role switches fail the same way.
    let mut mixed = many(3, 10, |s| login(s, "Failure", json!({})));
    mixed.push(rec(
        40,
        "signin",
        "SwitchRole",
        json!({"responseElements": {"SwitchRole": "Failure"}}),
    ));
    assert_eq!(hits("console-signin-failures", &mixed).len(), 1);
    // Near misses: three failures and a success; four failures over more than 5 minutes.
    let mut three = many(3, 10, |s| login(s, "Failure", json!({})));
    three.push(login(40, "Success", json!({})));
    assert!(hits("console-signin-failures", &three).is_empty());
    let slow = many(4, 100, |s| login(s, "Failure", json!({})));
    assert!(hits("console-signin-failures", &slow).is_empty());
}

#[test]
fn console_login_without_mfa_fires_for_iam_users_only() {
    let no_mfa = json!({"additionalEventData": {"MFAUsed": "No"}});
    assert_eq!(
        hits(
            "console-login-without-mfa",
            &[login(0, "Success", no_mfa.clone())]
        )
        .len(),
        1
    );
    assert!(hits(
        "console-login-without-mfa",
        &[login(0, "Success", json!({}))]
    )
    .is_empty());
    let federated = json!({"additionalEventData": {"MFAUsed": "No"},
        "userIdentity": role("AWSReservedSSO_Admin_0123")});
    assert!(hits(
        "console-login-without-mfa",
        &[login(0, "Success", federated)]
    )
    .is_empty());
    assert!(hits("console-login-without-mfa", &[login(0, "Failure", no_mfa)]).is_empty());
}

#[test]
fn console_logins_from_three_addresses_in_an_hour_fire() {
    let from = |s: i64, ip: &str| login(s, "Success", json!({"sourceIPAddress": ip}));
    let three = [
        from(0, "192.0.2.1"),
        from(600, "198.51.100.2"),
        from(1200, "203.0.113.3"),
    ];
    let found = hits("console-logins-from-several-ips", &three);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].distinct,
        ["192.0.2.1", "198.51.100.2", "203.0.113.3"]
    );
    let spread = [
        from(0, "192.0.2.1"),
        from(3600, "198.51.100.2"),
        from(7200, "203.0.113.3"),
    ];
    assert!(hits("console-logins-from-several-ips", &spread).is_empty());
}

#[test]
fn root_activity_fires_except_what_aws_records_itself() {
    let root = json!({"type": "Root", "principalId": "111122223333",
        "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"});
    let call = rec(
        0,
        "iam",
        "CreateAccessKey",
        json!({"userIdentity": root.clone()}),
    );
    let found = hits("root-activity", &[call]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].group[0].1, "arn:aws:iam::111122223333:root");
    let service_event = rec(
        0,
        "sso",
        "Federate",
        json!({"userIdentity": root.clone(), "eventType": "AwsServiceEvent"}),
    );
    let mut on_behalf = root;
    on_behalf["invokedBy"] = json!("cloudformation.amazonaws.com");
    let invoked = rec(0, "s3", "CreateBucket", json!({"userIdentity": on_behalf}));
    assert!(hits("root-activity", &[service_event, invoked]).is_empty());
    assert!(hits(
        "root-activity",
        &[rec(0, "iam", "CreateAccessKey", json!({}))]
    )
    .is_empty());
}

#[test]
fn logging_changes_fire_per_action_and_restarts_do_not() {
    let changes = [
        rec(0, "cloudtrail", "StopLogging", json!({})),
        rec(1, "cloudtrail", "DeleteTrail", json!({})),
        rec(2, "cloudtrail", "UpdateTrail", json!({})),
        rec(
            3,
            "cloudtrail",
            "PutEventSelectors",
            json!({"errorCode": "AccessDenied"}),
        ),
        rec(4, "ec2", "DeleteFlowLogs", json!({})),
        rec(5, "logs", "DeleteLogGroup", json!({})),
        rec(6, "guardduty", "DeleteDetector", json!({})),
    ];
    let found = hits("logging-critical-change", &changes);
    let actions: Vec<&str> = found.iter().map(|h| h.group[1].1.as_str()).collect();
    assert_eq!(
        actions,
        [
            "DeleteDetector",
            "DeleteFlowLogs",
            "DeleteLogGroup",
            "DeleteTrail",
            "PutEventSelectors",
            "StopLogging",
            "UpdateTrail"
        ]
    );
    let quiet = [
        rec(0, "cloudtrail", "StartLogging", json!({})),
        rec(1, "ec2", "DeleteLogGroup", json!({})),
        rec(2, "logs", "DeleteLogStream", json!({})),
    ];
    assert!(hits("logging-critical-change", &quiet).is_empty());
}

fn denied(seconds: i64, code: &str) -> Value {
    rec(
        seconds,
        "ec2",
        "GetPasswordData",
        json!({"errorCode": code}),
    )
}

#[test]
fn ten_denied_calls_in_five_minutes_fire_but_not_for_aws_services() {
    for code in [
        "AccessDenied",
        "Client.UnauthorizedOperation",
        "AccessDeniedException",
        "Client.NotAuthorizedForThis",
    ] {
        let burst = many(10, 20, |s| denied(s, code));
        assert_eq!(hits("failed-api-calls", &burst).len(), 1, "{code}");
    }
    assert!(hits(
        "failed-api-calls",
        &many(9, 20, |s| denied(s, "AccessDenied"))
    )
    .is_empty());
    assert!(hits(
        "failed-api-calls",
        &many(10, 40, |s| denied(s, "AccessDenied"))
    )
    .is_empty());
    let throttled = many(20, 1, |s| denied(s, "ThrottlingException"));
    assert!(hits("failed-api-calls", &throttled).is_empty());
    let service = many(10, 1, |s| {
        let mut r = denied(s, "AccessDenied");
        r["userIdentity"] = json!({"type": "AWSService", "invokedBy": "config.amazonaws.com"});
        r
    });
    assert!(hits("failed-api-calls", &service).is_empty());
    let untyped_service = many(10, 1, |s| {
        let mut r = denied(s, "AccessDenied");
        r["userIdentity"] = json!({"invokedBy": "config.amazonaws.com"});
        r
    });
    assert!(hits("failed-api-calls", &untyped_service).is_empty());
}

#[test]
fn ten_secret_reads_in_a_minute_fire() {
    let read = |s: i64| rec(s, "secretsmanager", "GetSecretValue", json!({}));
    assert_eq!(hits("secrets-many-reads", &many(10, 6, read)).len(), 1);
    assert!(hits("secrets-many-reads", &many(10, 7, read)).is_empty());
    let refused = many(10, 1, |s| {
        rec(
            s,
            "secretsmanager",
            "GetSecretValue",
            json!({"errorCode": "AccessDeniedException"}),
        )
    });
    assert!(hits("secrets-many-reads", &refused).is_empty());
}

#[test]
fn five_users_created_or_deleted_in_an_hour_fire_per_account() {
    for (rule, action) in [
        ("iam-many-users-created", "CreateUser"),
        ("iam-many-users-deleted", "DeleteUser"),
    ] {
        // By different principals: the account is the group.
        let five = many(5, 600, |s| {
            rec(
                s,
                "iam",
                action,
                json!({"userIdentity": role(&format!("admin-{s}"))}),
            )
        });
        let found = hits(rule, &five);
        assert_eq!(found.len(), 1, "{rule}");
        assert_eq!(
            found[0].group,
            [("recipientAccountId".to_string(), "111122223333".to_string())]
        );
        assert!(hits(rule, &many(4, 600, |s| rec(s, "iam", action, json!({})))).is_empty());
        assert!(hits(rule, &many(5, 900, |s| rec(s, "iam", action, json!({})))).is_empty());
    }
}

fn run_instances(seconds: i64, instance_type: &str, min: u64, max: u64) -> Value {
    rec(
        seconds,
        "ec2",
        "RunInstances",
        json!({"requestParameters": {"instanceType": instance_type,
            "instancesSet": {"items": [{"imageId": "ami-1", "minCount": min, "maxCount": max}]}}}),
    )
}

#[test]
fn five_instances_in_one_request_fire() {
    let rule = "ec2-many-instances-one-request";
    assert_eq!(hits(rule, &[run_instances(0, "t3.micro", 1, 5)]).len(), 1);
    assert_eq!(hits(rule, &[run_instances(0, "t3.micro", 5, 5)]).len(), 1);
    assert!(hits(rule, &[run_instances(0, "t3.micro", 1, 4)]).is_empty());
    let mut answered = run_instances(0, "t3.micro", 1, 1);
    answered["responseElements"] = json!({"instancesSet": {"items": [{}, {}, {}, {}, {}]}});
    assert_eq!(hits(rule, &[answered]).len(), 1);
}

#[test]
fn three_large_instances_in_one_request_fire() {
    let rule = "ec2-large-instances-one-request";
    for t in [
        "p2.xlarge",
        "m5.2xlarge",
        "p4d.24xlarge",
        "c5.metal",
        "m7i.metal-24xl",
    ] {
        assert_eq!(hits(rule, &[run_instances(0, t, 1, 3)]).len(), 1, "{t}");
    }
    for t in ["t3.large", "m5.large", "xlarge", "p2.xlargeish"] {
        assert!(hits(rule, &[run_instances(0, t, 1, 10)]).is_empty(), "{t}");
    }
    assert!(hits(rule, &[run_instances(0, "p2.xlarge", 1, 2)]).is_empty());
}

#[test]
fn ten_launches_or_terminations_in_ten_minutes_fire_but_not_auto_scaling() {
    let launch = |s: i64| run_instances(s, "t3.micro", 1, 1);
    let rule = "ec2-many-instances-launched";
    assert_eq!(hits(rule, &many(10, 60, launch)).len(), 1);
    assert!(hits(rule, &many(9, 60, launch)).is_empty());
    assert!(hits(rule, &many(10, 70, launch)).is_empty());
    let scaling = many(10, 1, |s| {
        let mut r = launch(s);
        r["userIdentity"] =
            role("aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling");
        r
    });
    assert!(hits(rule, &scaling).is_empty());

    let terminate = |s: i64| rec(s, "ec2", "TerminateInstances", json!({}));
    let rule = "ec2-many-instances-terminated";
    assert_eq!(hits(rule, &many(10, 60, terminate)).len(), 1);
    let failed = many(10, 1, |s| {
        rec(
            s,
            "ec2",
            "TerminateInstances",
            json!({"errorCode": "Client.OperationNotPermitted"}),
        )
    });
    assert!(hits(rule, &failed).is_empty());
}

#[test]
fn five_instances_terminated_in_one_request_fire() {
    let rule = "ec2-many-instances-terminated-one-request";
    let items = |n: usize| {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"instanceId": format!("i-{i}")}))
            .collect();
        rec(
            0,
            "ec2",
            "TerminateInstances",
            json!({"requestParameters": {"instancesSet": {"items": list}}}),
        )
    };
    assert_eq!(hits(rule, &[items(5)]).len(), 1);
    assert!(hits(rule, &[items(4)]).is_empty());
}

#[test]
fn launches_in_three_regions_within_an_hour_fire() {
    let rule = "ec2-launches-in-several-regions";
    let in_region = |s: i64, region: &str| {
        let mut r = run_instances(s, "c5.4xlarge", 1, 1);
        r["awsRegion"] = json!(region);
        r["errorCode"] = json!("Client.VcpuLimitExceeded");
        r
    };
    let three = [
        in_region(0, "us-east-1"),
        in_region(60, "eu-west-1"),
        in_region(120, "ap-south-1"),
    ];
    let found = hits(rule, &three);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].distinct, ["ap-south-1", "eu-west-1", "us-east-1"]);
    let two = [
        in_region(0, "us-east-1"),
        in_region(60, "eu-west-1"),
        in_region(120, "us-east-1"),
    ];
    assert!(hits(rule, &two).is_empty());
}

#[test]
fn first_use_rules_offer_candidates_for_the_history_check() {
    let (_, found) = run("first-ec2-launch", &[run_instances(0, "t3.micro", 1, 1)]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].term, ["RunInstances"]);
    assert!(run(
        "first-ec2-launch",
        &[rec(0, "ec2", "DescribeInstances", json!({}))]
    )
    .1
    .is_empty());

    let (_, found) = run(
        "first-s3-bucket-creation",
        &[rec(0, "s3", "CreateBucket", json!({}))],
    );
    assert_eq!(found.len(), 1);
    let taken = rec(
        0,
        "s3",
        "CreateBucket",
        json!({"errorCode": "BucketAlreadyExists"}),
    );
    assert!(run("first-s3-bucket-creation", &[taken]).1.is_empty());

    let (_, found) = run(
        "first-dynamodb-activity",
        &[
            rec(0, "dynamodb", "Scan", json!({})),
            rec(9, "dynamodb", "GetItem", json!({})),
        ],
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].term, ["dynamodb.amazonaws.com"]);
    assert_eq!(found[0].count, 2);
    assert!(run(
        "first-dynamodb-activity",
        &[rec(0, "s3", "GetObject", json!({}))]
    )
    .1
    .is_empty());
}

#[test]
fn mass_copy_delete_and_bucket_listing_fire_at_their_counts() {
    let copy = |s: i64| rec(s, "s3", "CopyObject", json!({}));
    assert_eq!(hits("s3-mass-copy", &many(100, 5, copy)).len(), 1);
    assert!(hits("s3-mass-copy", &many(99, 5, copy)).is_empty());

    let delete = |s: i64| {
        let name = if s % 2 == 0 {
            "DeleteObject"
        } else {
            "DeleteObjects"
        };
        rec(s, "s3", name, json!({}))
    };
    assert_eq!(hits("s3-mass-delete", &many(100, 5, delete)).len(), 1);
    assert!(hits("s3-mass-delete", &many(100, 7, delete)).is_empty());
    let lifecycle = many(100, 1, |s| {
        let mut r = delete(s);
        r["userIdentity"] = json!({"type": "AWSService", "invokedBy": "s3.amazonaws.com"});
        r
    });
    assert!(hits("s3-mass-delete", &lifecycle).is_empty());

    let list = |s: i64| rec(s, "s3", "ListBuckets", json!({}));
    assert_eq!(hits("s3-bucket-enumeration", &many(20, 25, list)).len(), 1);
    assert!(hits("s3-bucket-enumeration", &many(19, 25, list)).is_empty());
}
