//! Scheduled jobs that use long-lived IAM user keys: the on-premises backup server's nightly
//! EBS snapshots as `svc-backup`, and the morning cost report that `billing-reporter` runs
//! through a federation token.

use serde_json::json;

use crate::cloudtrail::Timestamp;

use super::super::agents;
use super::super::event::{session_token, sts_time, Call};
use super::super::identity::{self, Actor, Origin};
use super::super::org::{DEV, GLOBAL, MGMT, PROD};
use super::{at, is_workday, plus, weekday, Ctx};

pub fn backup_user(ctx: &mut Ctx) {
    let mut rng = ctx.rng("job/svc-backup");
    let org = ctx.org;
    let home = org.accounts[PROD].home;
    let dr = org.accounts[DEV].home;
    let actor = Actor::new(
        PROD,
        identity::iam_user(&org.svc_backup),
        &org.backup_server_ip,
        agents::BACKUP_SERVER,
        Origin::Client,
    );
    let volumes: Vec<String> = (0..3).map(|_| format!("vol-0{}", rng.hex(16))).collect();
    let days: Vec<Timestamp> = ctx.days().collect();
    for day in days {
        let mut t = at(day, 1, 30, rng.range(0, 240));
        let date = day.to_string();
        let date = &date[..10];
        ctx.emit(
            Call::new(t, GLOBAL, "sts:GetCallerIdentity"),
            &actor,
            &mut rng,
        );
        t = plus(t, 2);
        let describe = Call::new(t, home, "ec2:DescribeVolumes").req(json!({
            "volumeSet": {},
            "filterSet": { "items": [{ "name": "tag:Backup", "valueSet": { "items": [{ "value": "nightly" }] } }] }
        }));
        ctx.emit(describe, &actor, &mut rng);
        for volume in &volumes {
            t = plus(t, rng.range(1, 3));
            let snapshot = format!("snap-0{}", rng.hex(16));
            let create = Call::new(t, home, "ec2:CreateSnapshot")
                .req(json!({ "volumeId": volume, "description": format!("svc-backup nightly {date}") }))
                .resp(json!({
                    "requestId": rng.uuid(), "snapshotId": snapshot, "volumeId": volume,
                    "status": "pending", "startTime": t.unix() * 1000, "encrypted": true
                }));
            ctx.emit(create, &actor, &mut rng);
            let tag = Call::new(plus(t, 1), home, "ec2:CreateTags").req(json!({
                "resourcesSet": { "items": [{ "resourceId": snapshot }] },
                "tagSet": { "items": [{ "key": "CreatedBy", "value": "svc-backup" }, { "key": "Date", "value": date }] }
            }));
            ctx.emit(tag, &actor, &mut rng);
        }
        t = plus(t, rng.range(20, 60));
        let list = Call::new(t, home, "ec2:DescribeSnapshots").req(json!({
            "snapshotSet": {}, "ownersSet": { "items": [{ "owner": "self" }] },
            "filterSet": { "items": [{ "name": "tag:CreatedBy", "valueSet": { "items": [{ "value": "svc-backup" }] } }] }
        }));
        ctx.emit(list, &actor, &mut rng);
        // Snapshots past retention are deleted; one still being copied cannot be.
        for _ in 0..volumes.len() {
            t = plus(t, 1);
            let snapshot = format!("snap-0{}", rng.hex(16));
            let mut delete =
                Call::new(t, home, "ec2:DeleteSnapshot").req(json!({ "snapshotId": snapshot }));
            if rng.chance(0.03) {
                delete = delete.error(
                    "Client.InvalidSnapshot.InUse",
                    &format!("The snapshot {snapshot} is currently in use by a copy operation."),
                );
            } else {
                delete = delete.resp(json!({ "requestId": rng.uuid(), "_return": true }));
            }
            ctx.emit(delete, &actor, &mut rng);
        }
        if weekday(day) == 6 {
            // Sunday: a disaster-recovery copy to the development region.
            let copy = Call::new(plus(t, 5), dr, "ec2:CopySnapshot").req(json!({
                "sourceRegion": home, "sourceSnapshotId": format!("snap-0{}", rng.hex(16)),
                "description": format!("svc-backup weekly DR copy {date}"), "encrypted": true
            }));
            ctx.emit(copy, &actor, &mut rng);
        }
    }
}

pub fn billing_reporter(ctx: &mut Ctx) {
    let mut rng = ctx.rng("job/billing-reporter");
    let org = ctx.org;
    let user = &org.billing_reporter;
    let ip = &org.billing_host_ip;
    let caller = Actor::new(
        MGMT,
        identity::iam_user(user),
        ip,
        agents::BILLING_SCRIPT,
        Origin::Client,
    );
    let name = "billing-export";
    let days: Vec<Timestamp> = ctx.days().collect();
    for day in days {
        if !is_workday(day) {
            continue;
        }
        let t = at(day, 6, 10, rng.range(0, 90));
        let key = identity::session_key(&mut rng);
        let federated_arn = format!("arn:aws:sts::{}:federated-user/{name}", user.account);
        let token = Call::new(t, GLOBAL, "sts:GetFederationToken")
            .req(json!({ "name": name, "durationSeconds": 3600, "policyArns": [{ "arn": "arn:aws:iam::aws:policy/AWSBillingReadOnlyAccess" }] }))
            .resp(json!({
                "credentials": { "accessKeyId": key, "sessionToken": session_token(&mut rng), "expiration": sts_time(plus(t, 3600)) },
                "federatedUser": { "federatedUserId": format!("{}:{name}", user.account), "arn": federated_arn },
                "packedPolicySize": 9
            }));
        ctx.emit(token, &caller, &mut rng);
        let session = Actor::new(
            MGMT,
            identity::federated(user, name, &key, t),
            ip,
            agents::BILLING_SCRIPT,
            Origin::Client,
        );
        let date = day.to_string();
        let month_start = format!("{}-01", &date[..7]);
        let mut t = plus(t, 2);
        for granularity in ["DAILY", "MONTHLY"] {
            let call = Call::new(t, GLOBAL, "ce:GetCostAndUsage").req(json!({
                "timePeriod": { "start": month_start, "end": &date[..10] },
                "granularity": granularity,
                "metrics": ["UnblendedCost"],
                "groupBy": [{ "type": "DIMENSION", "key": "LINKED_ACCOUNT" }]
            }));
            ctx.emit(call, &session, &mut rng);
            t = plus(t, rng.range(1, 4));
        }
        let forecast = Call::new(t, GLOBAL, "ce:GetCostForecast").req(json!({
            "timePeriod": { "start": &date[..10] }, "metric": "UNBLENDED_COST", "granularity": "MONTHLY"
        }));
        ctx.emit(forecast, &session, &mut rng);
        ctx.emit(
            Call::new(plus(t, 1), GLOBAL, "organizations:ListAccounts"),
            &session,
            &mut rng,
        );
    }
}
