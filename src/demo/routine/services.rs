//! Machines that are not ours but act in our accounts: a monitoring vendor that assumes a
//! read-only role from its own account, AWS Config's service-linked role, CloudTrail checking
//! its bucket, and AWS Backup reporting its nightly jobs.

use serde_json::json;

use crate::cloudtrail::{Span, Timestamp};

use super::super::agents;
use super::super::event::{session_token, sts_time, Call};
use super::super::identity::{self, Actor, Origin, SessionKind};
use super::super::org::{GLOBAL, MGMT, PROD, REGIONS};
use super::super::params::{self, Resources};
use super::automation::{service_assume_role, ServiceAssume};
use super::{at, plus, Ctx};

/// The vendor polls every half hour and renews its session every hour.
pub fn monitoring_vendor(ctx: &mut Ctx) {
    let org = ctx.org;
    for (account, acct) in org.accounts.iter().enumerate() {
        let mut rng = ctx.rng(&format!("vendor/{account}"));
        let res = Resources::of(acct);
        let polls: Vec<Timestamp> = ctx
            .every(Span::minutes(30), Span::seconds(rng.range(0, 1799)))
            .collect();
        let external_id = rng.hex(32);
        let mut session: Option<Actor> = None;
        for (n, poll) in polls.into_iter().enumerate() {
            let t = plus(poll, rng.range(0, 30));
            let ip = rng.pick(&org.vendor_ips).clone();
            let hourly = n % 2 == 0;
            if hourly || session.is_none() {
                let name = format!("MonitoringVendor-{}", rng.hex(8));
                let key = identity::session_key(&mut rng);
                let caller = identity::aws_account(
                    &format!("{}:collector-{}", org.vendor_role_id, rng.range(1, 6)),
                    &org.vendor_account,
                );
                let call = Call::new(t, GLOBAL, "sts:AssumeRole")
                    .req(json!({ "roleArn": acct.monitoring.arn(), "roleSessionName": name, "externalId": external_id, "durationSeconds": 3600 }))
                    .resp(json!({
                        "credentials": { "accessKeyId": key, "sessionToken": session_token(&mut rng), "expiration": sts_time(plus(t, 3600)) },
                        "assumedRoleUser": { "assumedRoleId": format!("{}:{name}", acct.monitoring.id), "arn": acct.monitoring.session_arn(&name) }
                    }))
                    .resources(json!([{ "accountId": acct.id.as_str(), "type": "AWS::IAM::Role", "ARN": acct.monitoring.arn() }]));
                ctx.emit(
                    call,
                    &Actor::new(
                        account,
                        caller,
                        &ip,
                        agents::MONITORING_VENDOR,
                        Origin::Client,
                    ),
                    &mut rng,
                );
                let id =
                    identity::assumed_role(&acct.monitoring, &name, &key, t, SessionKind::Plain);
                session = Some(Actor::new(
                    account,
                    id,
                    &ip,
                    agents::MONITORING_VENDOR,
                    Origin::Client,
                ));
            }
            let Some(actor) = session.as_mut() else {
                continue;
            };
            actor.ip = ip;
            let mut t = plus(t, 2);
            for region in REGIONS {
                let mut actions = vec![
                    "ec2:DescribeInstances",
                    "monitoring:DescribeAlarms",
                    "tagging:GetResources",
                ];
                if hourly {
                    actions.extend([
                        "rds:DescribeDBInstances",
                        "lambda:ListFunctions20150331",
                        "elasticloadbalancing:DescribeLoadBalancers",
                    ]);
                }
                for action in actions {
                    t = plus(t, rng.range(0, 1));
                    let mut call = Call::new(t, region, action);
                    if let Some(request) = params::request(action, &res) {
                        call = call.req(request);
                    }
                    if action == "ec2:DescribeInstances" && rng.chance(0.004) {
                        call = call.error("Client.RequestLimitExceeded", "Request limit exceeded.");
                    }
                    ctx.emit(call, actor, &mut rng);
                }
            }
            if hourly {
                ctx.emit(
                    Call::new(t, GLOBAL, "iam:ListAccountAliases"),
                    actor,
                    &mut rng,
                );
            }
        }
    }
}

/// Config assumes its service-linked role in every region each hour and describes what changed.
pub fn config_recorder(ctx: &mut Ctx) {
    const DESCRIBES: [&str; 7] = [
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVolumes",
        "ec2:DescribeInstances",
        "ec2:DescribeRouteTables",
    ];
    let org = ctx.org;
    for (account, acct) in org.accounts.iter().enumerate() {
        for region in REGIONS {
            let mut rng = ctx.rng(&format!("config/{account}/{region}"));
            let res = Resources::of(acct);
            let session = "AWSConfig-Describe";
            let ticks: Vec<Timestamp> = ctx
                .every(Span::hours(1), Span::seconds(rng.range(0, 3599)))
                .collect();
            for (n, tick) in ticks.into_iter().enumerate() {
                let t = plus(tick, rng.range(0, 60));
                let how = ServiceAssume {
                    account,
                    service: "config.amazonaws.com",
                    region,
                    role: &acct.config,
                    session,
                    t,
                };
                let key = service_assume_role(ctx, &mut rng, how);
                let id = identity::assumed_role(
                    &acct.config,
                    session,
                    &key,
                    t,
                    SessionKind::InvokedBy("config.amazonaws.com"),
                );
                let actor = Actor::service(account, id, "config.amazonaws.com");
                for i in 0..3 {
                    let action = *rng.pick(&DESCRIBES);
                    let mut call = Call::new(plus(t, 2 + i), region, action);
                    if let Some(request) = params::request(action, &res) {
                        call = call.req(request);
                    }
                    ctx.emit(call, &actor, &mut rng);
                }
                if region == GLOBAL && n % 6 == 0 {
                    let call = Call::new(plus(t, 6), GLOBAL, "iam:GetAccountAuthorizationDetails")
                        .req(json!({ "filter": ["User", "Role", "Group", "LocalManagedPolicy"], "maxItems": 1000 }));
                    ctx.emit(call, &actor, &mut rng);
                }
            }
        }
    }
}

/// What AWS services do by themselves: CloudTrail checks its bucket, Backup runs its plan.
pub fn service_events(ctx: &mut Ctx) {
    let org = ctx.org;
    let mut rng = ctx.rng("service/cloudtrail");
    let trail = Actor::service(
        MGMT,
        identity::aws_service("cloudtrail.amazonaws.com"),
        "cloudtrail.amazonaws.com",
    );
    let bucket = &org.trail_bucket;
    let ticks: Vec<Timestamp> = ctx.every(Span::hours(1), Span::minutes(7)).collect();
    for tick in ticks {
        let call = Call::new(plus(tick, rng.range(0, 300)), GLOBAL, "s3:GetBucketAcl")
            .req(json!({ "bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "acl": "" }))
            .resources(json!([{ "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}") }]));
        ctx.emit(call, &trail, &mut rng);
    }

    let mut rng = ctx.rng("service/backup");
    let acct = &org.accounts[PROD];
    let res = Resources::of(acct);
    let region = acct.home;
    let backup = Actor::service(
        PROD,
        identity::aws_service_event(acct.id.as_str(), "backup.amazonaws.com"),
        "backup.amazonaws.com",
    );
    let plan = rng.uuid();
    let resources = [
        (
            "RDS",
            format!("arn:aws:rds:{region}:{}:db:orders-db", res.account),
        ),
        (
            "DynamoDB",
            format!(
                "arn:aws:dynamodb:{region}:{}:table/{}",
                res.account, res.table
            ),
        ),
    ];
    let days: Vec<Timestamp> = ctx.days().collect();
    for day in days {
        let start = at(day, 3, 0, rng.range(0, 120));
        for (kind, arn) in &resources {
            let job = rng.uuid().to_uppercase();
            let details = |state: &str| {
                json!({
                    "backupJobId": job, "backupPlanId": plan, "backupVaultName": "prod-daily",
                    "resourceArn": arn, "resourceType": kind, "state": state
                })
            };
            let started = Call::new(start, region, "backup:BackupJobStarted")
                .service_event(details("RUNNING"))
                .read_only(false);
            ctx.emit(started, &backup, &mut rng);
            let done = plus(start, rng.range(300, 2400));
            let completed = Call::new(done, region, "backup:BackupJobCompleted")
                .service_event(details("COMPLETED"))
                .read_only(false);
            ctx.emit(completed, &backup, &mut rng);
        }
    }
}
