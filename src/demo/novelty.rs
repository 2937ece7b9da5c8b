//! Rare but benign firsts in the hunt hour: the low, informational background a real hour has
//! (someone opens a service they never used, Terraform starts managing a new resource type, a
//! vendor's integration grows). They show what the hunt says about things that are new but
//! not alarming.

use serde_json::json;

use crate::cloudtrail::Timestamp;

use super::agents;
use super::event::{Call, Event, Kind};
use super::identity::{self, Actor, Origin, SessionKind};
use super::org::{Org, PermissionSet, DEV, PROD, REGIONS};
use super::rng::Rng;
use super::routine::{start_run, Ctx};

pub fn generate(org: &Org, seed: u64, hunt_start: Timestamp, end: Timestamp) -> Vec<Event> {
    let mut ctx = Ctx::new(org, seed, hunt_start, end);
    let mut rng = Rng::stream(seed, "novelty");
    let at =
        |minute: i64, second: i64| Timestamp::from_unix(hunt_start.unix() + minute * 60 + second);

    // An engineer with read-only access in production looks at Athena for the first time.
    if let Some(person) = org
        .people
        .iter()
        .find(|p| p.access.contains(&(PROD, PermissionSet::ReadOnly)))
    {
        let acct = &org.accounts[PROD];
        let role = acct.sso_role(PermissionSet::ReadOnly);
        let key = identity::session_key(&mut rng);
        let id = identity::assumed_role(role, &person.email, &key, at(-40, 0), SessionKind::Plain);
        let ip = org.office_ips[0].clone();
        let actor = Actor::new(
            PROD,
            id,
            &ip,
            agents::browser(person.browser),
            Origin::Console,
        );
        let calls = [
            ("athena:ListWorkGroups", json!({ "maxResults": 50 })),
            ("athena:GetWorkGroup", json!({ "workGroup": "primary" })),
            ("athena:ListDataCatalogs", json!({ "maxResults": 50 })),
            (
                "glue:GetDatabases",
                json!({ "catalogId": acct.id.as_str() }),
            ),
        ];
        for (i, (action, request)) in calls.into_iter().enumerate() {
            let call = Call::new(at(12, 3 * i as i64), acct.home, action).req(request);
            ctx.emit_as(call, &actor, &mut rng, Kind::Novelty);
        }
    }

    // Terraform in development starts managing an ECR repository.
    let run = at(20, 0);
    let mut session = start_run(&mut ctx, &mut rng, DEV, run);
    let home = org.accounts[DEV].home;
    let repository = "image-resize";
    let calls = [
        (
            "ecr:DescribeRepositories",
            json!({ "repositoryNames": [repository] }),
        ),
        (
            "ecr:CreateRepository",
            json!({ "repositoryName": repository, "imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": { "scanOnPush": true } }),
        ),
        (
            "ecr:PutLifecyclePolicy",
            json!({ "repositoryName": repository, "lifecyclePolicyText": "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"untagged\",\"countType\":\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":14},\"action\":{\"type\":\"expire\"}}]}" }),
        ),
    ];
    for (i, (action, request)) in calls.into_iter().enumerate() {
        session.agent = agents::terraform(action);
        let call = Call::new(at(20, 40 + 4 * i as i64), home, action).req(request);
        ctx.emit_as(call, &session, &mut rng, Kind::Novelty);
    }

    // The monitoring vendor's new ElastiCache integration reads clusters in every region.
    let acct = &org.accounts[PROD];
    let name = format!("MonitoringVendor-{}", rng.hex(8));
    let key = identity::session_key(&mut rng);
    let id = identity::assumed_role(&acct.monitoring, &name, &key, at(20, 0), SessionKind::Plain);
    let ip = org.vendor_ips[0].clone();
    let actor = Actor::new(PROD, id, &ip, agents::MONITORING_VENDOR, Origin::Client);
    for (i, region) in REGIONS.into_iter().enumerate() {
        let call = Call::new(
            at(25, 11 + i as i64),
            region,
            "elasticache:DescribeCacheClusters",
        )
        .req(json!({ "showCacheNodeInfo": true, "maxRecords": 100 }));
        ctx.emit_as(call, &actor, &mut rng, Kind::Novelty);
    }
    ctx.events
}
