//! Workloads that run around the clock: production's EC2 instances (SSM and CloudWatch agents
//! behind a VPC endpoint) and each account's Lambda function.

use serde_json::json;

use crate::cloudtrail::{Span, Timestamp};

use super::super::agents;
use super::super::event::{sts_time, Call};
use super::super::identity::{self, Actor, Origin, SessionKind};
use super::super::org::{Role, DEV, MGMT, PROD};
use super::super::params::{self, Resources};
use super::super::rng::Rng;
use super::{at, is_workday, plus, Ctx};

/// The instance profile role's credentials rotate about every six hours.
const ROTATION: i64 = 6 * 3600;

/// An AWS service assuming a role in one of our accounts.
pub struct ServiceAssume<'a> {
    pub account: usize,
    pub service: &'static str,
    pub region: &'static str,
    pub role: &'a Role,
    pub session: &'a str,
    pub t: Timestamp,
}

/// Records the `AssumeRole` and returns the session's access key id.
pub fn service_assume_role(ctx: &mut Ctx, rng: &mut Rng, a: ServiceAssume) -> String {
    let ServiceAssume {
        account,
        service,
        region,
        role,
        session,
        t,
    } = a;
    let key = identity::session_key(rng);
    let call = Call::new(t, region, "sts:AssumeRole")
        .req(json!({ "roleArn": role.arn(), "roleSessionName": session }))
        .resp(json!({
            "credentials": {
                "accessKeyId": key,
                "sessionToken": super::super::event::session_token(rng),
                "expiration": sts_time(plus(t, 3600 * 6)),
            }
        }))
        .resources(
            json!([{ "accountId": role.account, "type": "AWS::IAM::Role", "ARN": role.arn() }]),
        );
    let actor = Actor::service(account, identity::aws_service(service), service);
    ctx.emit(call, &actor, rng);
    key
}

/// Production's app servers: the SSM agent polls and reports, the CloudWatch agent ships logs.
pub fn instances(ctx: &mut Ctx) {
    let org = ctx.org;
    let account = &org.accounts[PROD];
    let region = account.home;
    let role = &org.instance_role;
    for (instance, ip) in &org.instances {
        let mut rng = ctx.rng(&format!("instance/{instance}"));
        let origin = Origin::Endpoint {
            vpce: account.vpce.clone(),
            owner: account.id.as_str().to_string(),
        };
        let phase = Span::seconds(rng.range(0, ROTATION - 1));
        let offset = rng.range(0, 299);
        let windows: Vec<Timestamp> = ctx.every(Span::seconds(ROTATION), phase).collect();
        for w in windows {
            let how = ServiceAssume {
                account: PROD,
                service: "ec2.amazonaws.com",
                region,
                role,
                session: instance,
                t: w,
            };
            let key = service_assume_role(ctx, &mut rng, how);
            let id = identity::assumed_role(role, instance, &key, w, SessionKind::Ec2);
            let ssm = Actor::new(PROD, id, ip, agents::SSM_AGENT, origin.clone());
            let cw = ssm.with_agent(agents::CLOUDWATCH_AGENT);
            let start = w.unix() + offset;
            let end = w.unix() + ROTATION;
            let mut ticks: Vec<(i64, u8)> = Vec::new();
            ticks.extend((start..end).step_by(300).map(|t| (t, 0)));
            ticks.extend((start + 40..end).step_by(180).map(|t| (t, 1)));
            ticks.extend((start + 95..end).step_by(1800).map(|t| (t, 2)));
            ticks.extend((start + 150..end).step_by(300).map(|t| (t, 3)));
            ticks.extend((start + 200..end).step_by(3600).map(|t| (t, 4)));
            ticks.push((start + 610, 5));
            ticks.sort_unstable();
            for (t, what) in ticks {
                let t = Timestamp::from_unix(t + rng.range(0, 20));
                let (call, actor) = match what {
                    0 => (
                        Call::new(t, region, "ssm:UpdateInstanceInformation").req(json!({
                            "instanceId": instance,
                            "agentVersion": "3.3.1142.0",
                            "agentStatus": "Active",
                            "platformType": "Linux",
                            "platformName": "Amazon Linux",
                            "platformVersion": "2023",
                            "iPAddress": ip,
                            "computerName": format!("ip-{}.{region}.compute.internal", ip.replace('.', "-")),
                            "agentName": "amazon-ssm-agent",
                            "availabilityZone": format!("{region}a"),
                            "availabilityZoneId": "euw1-az1"
                        })),
                        &ssm,
                    ),
                    1 => (
                        Call::new(t, region, "ec2messages:GetMessages").req(json!({
                            "destination": instance,
                            "messagesRequestId": rng.uuid(),
                            "visibilityTimeoutInSeconds": 10
                        })),
                        &ssm,
                    ),
                    2 => (
                        Call::new(t, region, "ssm:ListInstanceAssociations")
                            .req(json!({ "instanceId": instance, "maxResults": 20 })),
                        &ssm,
                    ),
                    3 => (
                        Call::new(t, region, "logs:PutLogEvents")
                            .req(json!({ "logGroupName": "/app/orders-api", "logStreamName": instance }))
                            .data_event(),
                        &cw,
                    ),
                    4 => (
                        Call::new(t, region, "ec2:DescribeTags").req(json!({
                            "filterSet": { "items": [{ "name": "resource-id", "valueSet": { "items": [{ "value": instance }] } }] }
                        })),
                        &cw,
                    ),
                    _ => (
                        Call::new(t, region, "ssm:UpdateInstanceAssociationStatus").req(json!({
                            "associationId": rng.uuid(),
                            "instanceId": instance,
                            "executionResult": { "status": "Success", "executionSummary": "1 out of 1 plugin processed, 1 success" }
                        })),
                        &ssm,
                    ),
                };
                ctx.emit(call, actor, &mut rng);
            }
        }
    }
}

/// A Lambda execution environment: Lambda assumes the function's role, and the function then
/// calls with that session from one of the region's public addresses.
fn cold_start(
    ctx: &mut Ctx,
    rng: &mut Rng,
    account: usize,
    t: Timestamp,
    ip_first: &[u8],
    agent: &str,
) -> Actor {
    let org = ctx.org;
    let acct = &org.accounts[account];
    let role = &acct.lambda;
    let function = acct.lambda_function;
    let how = ServiceAssume {
        account,
        service: "lambda.amazonaws.com",
        region: acct.home,
        role,
        session: function,
        t,
    };
    let key = service_assume_role(ctx, rng, how);
    let id = identity::assumed_role(role, function, &key, t, SessionKind::Plain);
    let ip = format!(
        "{}.{}.{}.{}",
        rng.pick(ip_first),
        rng.range(1, 254),
        rng.range(1, 254),
        rng.range(2, 250)
    );
    Actor::new(account, id, &ip, agent, Origin::Client)
}

/// The three accounts' functions: production's scheduled export, development's upload-driven
/// image resizer, and the security account's daily guardrail check.
pub fn lambdas(ctx: &mut Ctx) {
    order_export(ctx);
    image_resize(ctx);
    guardrails(ctx);
}

fn order_export(ctx: &mut Ctx) {
    let mut rng = ctx.rng("lambda/order-export");
    let res = Resources::of(&ctx.org.accounts[PROD]);
    let region = res.region;
    let ticks: Vec<Timestamp> = ctx.every(Span::minutes(15), Span::seconds(2)).collect();
    let mut env: Option<Actor> = None;
    for t in ticks {
        let mut t = plus(t, rng.range(0, 3));
        // Lambda recycles idle environments; a new one means a new role session.
        let actor = match env.take() {
            Some(actor) if !rng.chance(0.18) => actor,
            _ => {
                let actor = cold_start(ctx, &mut rng, PROD, t, &[3, 34, 52], agents::LAMBDA_PYTHON);
                t = plus(t, 1);
                let call = Call::new(t, region, "secretsmanager:GetSecretValue").req(
                    params::request("secretsmanager:GetSecretValue", &res).unwrap_or_default(),
                );
                ctx.emit(call, &actor, &mut rng);
                actor
            }
        };
        let get = Call::new(plus(t, 1), region, "ssm:GetParameter")
            .req(params::request("ssm:GetParameter", &res).unwrap_or_default());
        ctx.emit(get, &actor, &mut rng);
        let key = Call::new(plus(t, rng.range(3, 40)), region, "kms:GenerateDataKey").req(json!({
            "keyId": "alias/order-export",
            "keySpec": "AES_256",
            "encryptionContext": { "aws:s3:arn": format!("arn:aws:s3:::{}/exports/", res.artifacts_bucket) }
        }));
        ctx.emit(key, &actor, &mut rng);
        env = Some(actor);
    }
}

fn image_resize(ctx: &mut Ctx) {
    let mut rng = ctx.rng("lambda/image-resize");
    let res = Resources::of(&ctx.org.accounts[DEV]);
    let region = res.region;
    let days: Vec<Timestamp> = ctx.days().collect();
    for day in days {
        if !is_workday(day) {
            continue;
        }
        let mut times: Vec<Timestamp> = Vec::new();
        for h in 8..18 {
            for _ in 0..rng.poisson(3.0) {
                times.push(at(day, h, rng.range(0, 59), rng.range(0, 59)));
            }
        }
        times.sort();
        let mut env: Option<(Actor, Timestamp)> = None;
        for t in times {
            let actor = match env.take() {
                // An environment stays warm for a while after its last invocation.
                Some((actor, last)) if t.since(last) < Span::minutes(12) => actor,
                _ => {
                    let agent = agents::lambda_node("rekognition");
                    let actor = cold_start(ctx, &mut rng, DEV, t, &[35, 44, 54], &agent);
                    let get = Call::new(plus(t, 1), region, "ssm:GetParameter")
                        .req(params::request("ssm:GetParameter", &res).unwrap_or_default());
                    ctx.emit(
                        get,
                        &actor.with_agent(&agents::lambda_node("ssm")),
                        &mut rng,
                    );
                    let decrypt = Call::new(plus(t, 1), region, "kms:Decrypt").req(json!({
                        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                        "encryptionContext": { "LambdaFunctionName": res.function }
                    }));
                    ctx.emit(
                        decrypt,
                        &actor.with_agent(&agents::lambda_node("kms")),
                        &mut rng,
                    );
                    actor
                }
            };
            let detect = Call::new(plus(t, 2), region, "rekognition:DetectLabels").req(json!({
                "image": { "s3Object": { "bucket": res.artifacts_bucket, "name": format!("uploads/{}.jpg", rng.hex(12)) } },
                "maxLabels": 10
            }));
            ctx.emit(detect, &actor, &mut rng);
            env = Some((actor, t));
        }
    }
}

fn guardrails(ctx: &mut Ctx) {
    let mut rng = ctx.rng("lambda/org-guardrails");
    let org = ctx.org;
    let region = org.accounts[MGMT].home;
    let days: Vec<Timestamp> = ctx.days().collect();
    for day in days {
        let t = at(day, 5, 0, rng.range(5, 40));
        let actor = cold_start(
            ctx,
            &mut rng,
            MGMT,
            t,
            &[3, 18, 44, 54],
            agents::LAMBDA_PYTHON,
        );
        let mut t = plus(t, 1);
        ctx.emit(
            Call::new(t, region, "organizations:ListAccounts"),
            &actor,
            &mut rng,
        );
        for account in &org.accounts {
            t = plus(t, 1);
            let call = Call::new(t, region, "organizations:ListPoliciesForTarget").req(
                json!({ "targetId": account.id.as_str(), "filter": "SERVICE_CONTROL_POLICY" }),
            );
            ctx.emit(call, &actor, &mut rng);
        }
        let call = Call::new(plus(t, 1), region, "iam:GetAccountPasswordPolicy");
        ctx.emit(call, &actor, &mut rng);
    }
}
