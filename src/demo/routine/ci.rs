//! GitHub Actions deployments: each run exchanges its OIDC token for a session of the account's
//! `github-deploy` role, Terraform refreshes every resource it manages, and some runs apply a
//! change or two. Pushes come in working hours; a drift check runs every night.

use serde_json::{json, Value};

use crate::cloudtrail::Timestamp;

use super::super::agents;
use super::super::event::{session_token, sts_time, Call};
use super::super::identity::{self, Actor, Origin, SessionKind};
use super::super::org::{DEV, GLOBAL, MGMT, PROD};
use super::super::params::{self, Resources};
use super::super::rng::Rng;
use super::{at, is_workday, plus, Ctx};

/// What `terraform plan` reads, in order. Global services are recorded in us-east-1.
pub const PLAN: [&str; 33] = [
    "sts:GetCallerIdentity",
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeRouteTables",
    "s3:GetBucketPolicy",
    "s3:GetBucketVersioning",
    "s3:GetBucketEncryption",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "lambda:GetFunction20150331v2",
    "lambda:ListVersionsByFunction20150331",
    "lambda:GetFunctionCodeSigningConfig",
    "logs:DescribeLogGroups",
    "logs:ListTagsForResource",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeTimeToLive",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "ecs:DescribeClusters",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "monitoring:DescribeAlarms",
];

/// Where a call on `action` is recorded when the workload lives in `home`.
pub fn region_of(action: &str, home: &'static str) -> &'static str {
    match action.split_once(':').map(|(s, _)| s) {
        Some("iam" | "organizations" | "ce" | "health" | "signin") => GLOBAL,
        _ => home,
    }
}

/// The security account runs no application, so its Terraform manages less.
fn manages(account: usize, action: &str) -> bool {
    let service = action.split_once(':').map_or(action, |(s, _)| s);
    account != MGMT || !matches!(service, "ec2" | "lambda" | "dynamodb" | "ecs")
}

/// One kind of change `terraform apply` makes, with its request and response.
fn change(kind: u32, r: &Resources, rng: &mut Rng) -> (&'static str, Value, Option<Value>) {
    let sha = rng.hex(40);
    match kind {
        0 => (
            "lambda:UpdateFunctionCode20150331v2",
            json!({ "functionName": r.function, "s3Bucket": r.artifacts_bucket, "s3Key": format!("builds/{}/{}.zip", r.function, &sha[..12]), "publish": false }),
            Some(
                json!({ "functionName": r.function, "functionArn": r.function_arn(), "lastUpdateStatus": "InProgress", "state": "Active" }),
            ),
        ),
        1 => {
            let revision = rng.range(100, 400);
            (
                "ecs:RegisterTaskDefinition",
                json!({
                    "family": r.service,
                    "containerDefinitions": [{ "name": r.service, "image": format!("{}.dkr.ecr.{}.amazonaws.com/{}:{}", r.account, r.region, r.service, &sha[..12]) }],
                    "networkMode": "awsvpc", "cpu": "512", "memory": "1024"
                }),
                Some(
                    json!({ "taskDefinition": { "taskDefinitionArn": format!("arn:aws:ecs:{}:{}:task-definition/{}:{revision}", r.region, r.account, r.service), "revision": revision } }),
                ),
            )
        }
        2 => (
            "ecs:UpdateService",
            json!({ "cluster": r.cluster, "service": r.service, "taskDefinition": r.service, "forceNewDeployment": false }),
            None,
        ),
        3 => (
            "ec2:CreateTags",
            json!({ "resourcesSet": { "items": [{ "resourceId": r.security_group }] }, "tagSet": { "items": [{ "key": "git_sha", "value": sha }] } }),
            Some(json!({ "requestId": rng.uuid(), "_return": true })),
        ),
        4 => (
            "iam:PutRolePolicy",
            json!({ "roleName": r.task_role, "policyName": "orders-table-access", "policyDocument": format!("{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":[\"dynamodb:GetItem\",\"dynamodb:Query\",\"dynamodb:PutItem\"],\"Resource\":\"arn:aws:dynamodb:{}:{}:table/{}\"}}]}}", r.region, r.account, r.table) }),
            None,
        ),
        5 => (
            "monitoring:PutMetricAlarm",
            json!({ "alarmName": format!("{}-5xx", r.service), "metricName": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB", "threshold": 10.0, "evaluationPeriods": 3, "comparisonOperator": "GreaterThanThreshold" }),
            None,
        ),
        _ => (
            "logs:PutRetentionPolicy",
            json!({ "logGroupName": r.log_group(), "retentionInDays": 30 }),
            None,
        ),
    }
}

/// Weights of the change kinds above: code deploys dominate.
const CHANGES: [(u32, u32); 7] = [(0, 30), (1, 20), (2, 20), (3, 10), (4, 6), (5, 6), (6, 8)];

/// A runner's address: the organisation's larger runners have static networks.
fn runner_ip(rng: &mut Rng, networks: &[String]) -> String {
    format!("{}.{}", rng.pick(networks), rng.range(4, 250))
}

/// Starts a run: records `AssumeRoleWithWebIdentity` and returns the role session.
pub fn start_run(ctx: &mut Ctx, rng: &mut Rng, account: usize, t: Timestamp) -> Actor {
    let org = ctx.org;
    let acct = &org.accounts[account];
    let subject = identity::github_subject(acct);
    let session = format!("gha-{}-1", 11_000_000_000u64 + rng.below(900_000_000));
    let key = identity::session_key(rng);
    let ip = runner_ip(rng, &org.runner_networks);
    let provider = acct.oidc_provider_arn();
    let caller = Actor::new(
        account,
        identity::web_identity(acct, &subject),
        &ip,
        agents::GITHUB_ACTION,
        Origin::Client,
    );
    let call = Call::new(t, acct.home, "sts:AssumeRoleWithWebIdentity")
        .req(json!({ "roleArn": acct.ci.arn(), "roleSessionName": session, "durationSeconds": 3600 }))
        .resp(json!({
            "credentials": { "accessKeyId": key, "sessionToken": session_token(rng), "expiration": sts_time(plus(t, 3600)) },
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": { "assumedRoleId": format!("{}:{session}", acct.ci.id), "arn": acct.ci.session_arn(&session) },
            "provider": provider,
            "audience": "sts.amazonaws.com"
        }))
        .resources(json!([{ "accountId": acct.id.as_str(), "type": "AWS::IAM::Role", "ARN": acct.ci.arn() }]));
    ctx.emit(call, &caller, rng);
    let id = identity::assumed_role(
        &acct.ci,
        &session,
        &key,
        t,
        SessionKind::WebIdentity(&provider),
    );
    Actor::new(account, id, &ip, "", Origin::Client)
}

fn run(ctx: &mut Ctx, rng: &mut Rng, account: usize, start: Timestamp, apply: bool) {
    let acct = &ctx.org.accounts[account];
    let home = acct.home;
    let res = Resources::of(acct);
    let session = start_run(ctx, rng, account, start);
    let mut t = plus(start, rng.range(15, 40));
    for action in PLAN.iter().filter(|a| manages(account, a)) {
        t = plus(t, rng.range(0, 2));
        let mut call = Call::new(t, region_of(action, home), action);
        if let Some(request) = params::request(action, &res) {
            call = call.req(request);
        }
        // The provider retries throttled reads; the first attempt is still recorded.
        if rng.chance(0.003) {
            call = call.error("ThrottlingException", "Rate exceeded");
        }
        ctx.emit(call, &session.with_agent(&agents::terraform(action)), rng);
    }
    if !apply {
        return;
    }
    t = plus(t, rng.range(8, 30));
    for _ in 0..rng.range(1, 3) {
        let kind = *rng.weighted(&CHANGES);
        if account == MGMT && kind < 4 {
            continue;
        }
        let (action, request, response) = change(kind, &res, rng);
        t = plus(t, rng.range(1, 12));
        let mut call = Call::new(t, region_of(action, home), action).req(request);
        if let Some(response) = response {
            call = call.resp(response);
        }
        ctx.emit(call, &session.with_agent(&agents::terraform(action)), rng);
    }
}

/// Pushes per working hour, by account; the afternoon is busier than the morning.
fn pushes_per_hour(account: usize, h: i64) -> f64 {
    let base = match account {
        PROD => 0.45,
        DEV => 1.3,
        _ => 0.08,
    };
    let shape = match h {
        8 | 17 => 0.5,
        12 => 0.6,
        13..=16 => 1.3,
        _ => 1.0,
    };
    base * shape
}

pub fn deployments(ctx: &mut Ctx) {
    for account in [MGMT, PROD, DEV] {
        let mut rng = ctx.rng(&format!("ci/{account}"));
        let days: Vec<Timestamp> = ctx.days().collect();
        for day in days {
            let mut runs = vec![(at(day, 2, 17, rng.range(0, 59)), false)];
            if is_workday(day) {
                for h in 8..18 {
                    for _ in 0..rng.poisson(pushes_per_hour(account, h)) {
                        runs.push((
                            at(day, h, rng.range(0, 59), rng.range(0, 59)),
                            rng.chance(0.45),
                        ));
                    }
                }
            }
            runs.sort_by_key(|(t, _)| *t);
            for (t, apply) in runs {
                run(ctx, &mut rng, account, t, apply);
            }
        }
    }
}
