//! People at work: each signs in through IAM Identity Center (portal events in the management
//! account, `AssumeRoleWithSAML` and a console sign-in in the target account), then browses
//! console pages that fire a few API calls each, with the odd change and the odd denial.

use serde_json::{json, Value};

use crate::cloudtrail::Timestamp;

use super::super::agents;
use super::super::event::{denied_message, session_token, sts_time, Call};
use super::super::identity::{self, Actor, Origin, SessionKind};
use super::super::org::{PermissionSet, Person, DEV, GLOBAL, MGMT, PROD};
use super::super::params::{self, Resources};
use super::super::rng::Rng;
use super::ci::region_of;
use super::{at, is_workday, plus, Ctx};

type Page = &'static [&'static str];

const EC2: Page = &[
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeAddresses",
];
const SG: Page = &[
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeVpcs",
];
const ALARMS: Page = &[
    "monitoring:DescribeAlarms",
    "monitoring:DescribeAlarmHistory",
];
const LOGS: Page = &[
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:DescribeMetricFilters",
];
const LAMBDA: Page = &[
    "lambda:ListFunctions20150331",
    "lambda:GetFunction20150331v2",
    "lambda:GetAccountSettings20160819",
];
const S3: Page = &[
    "s3:ListBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketAcl",
];
const IAM_ROLES: Page = &[
    "iam:ListRoles",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
];
const IAM_USERS: Page = &[
    "iam:ListUsers",
    "iam:GetAccountSummary",
    "iam:ListMFADevices",
];
const TRAILS: Page = &[
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:LookupEvents",
];
const GUARDDUTY: Page = &[
    "guardduty:ListDetectors",
    "guardduty:ListFindings",
    "guardduty:GetFindings",
    "guardduty:GetFindingsStatistics",
];
const CONFIG: Page = &[
    "config:DescribeConfigRules",
    "config:DescribeComplianceByConfigRule",
    "config:DescribeConfigurationRecorderStatus",
];
const SECURITY_HUB: Page = &[
    "securityhub:DescribeHub",
    "securityhub:GetEnabledStandards",
    "securityhub:GetFindings",
];
const ECS: Page = &[
    "ecs:ListClusters",
    "ecs:DescribeClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
];
const RDS: Page = &[
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeEvents",
];
const DYNAMODB: Page = &["dynamodb:ListTables", "dynamodb:DescribeTable"];
const COST: Page = &["ce:GetCostAndUsage", "ce:GetCostForecast"];
const ORGANIZATIONS: Page = &[
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    "organizations:ListRoots",
];
const HOME: Page = &["health:DescribeEventAggregates"];

/// The pages a person opens in one account, with how often.
fn pages(login: &str, account: usize) -> &'static [(Page, u32)] {
    match (login, account) {
        ("alice.martin", PROD) => &[
            (EC2, 5),
            (SG, 2),
            (ALARMS, 4),
            (LOGS, 4),
            (ECS, 4),
            (RDS, 2),
            (LAMBDA, 2),
            (IAM_ROLES, 1),
            (S3, 1),
            (HOME, 1),
        ],
        ("alice.martin", MGMT) => &[
            (ORGANIZATIONS, 3),
            (COST, 3),
            (TRAILS, 1),
            (IAM_ROLES, 1),
            (HOME, 2),
        ],
        ("bilal.okafor", MGMT) => &[
            (GUARDDUTY, 5),
            (SECURITY_HUB, 4),
            (CONFIG, 3),
            (TRAILS, 3),
            (IAM_USERS, 1),
            (HOME, 1),
        ],
        ("bilal.okafor", _) => &[
            (IAM_ROLES, 3),
            (IAM_USERS, 2),
            (SG, 3),
            (S3, 2),
            (TRAILS, 2),
            (CONFIG, 1),
        ],
        ("chen.wei", DEV) => &[(LAMBDA, 5), (LOGS, 5), (DYNAMODB, 3), (ECS, 2), (HOME, 1)],
        ("chen.wei", _) => &[(LOGS, 4), (LAMBDA, 2), (ALARMS, 2)],
        ("dana.kowalski", PROD) => &[
            (EC2, 4),
            (ALARMS, 5),
            (LOGS, 3),
            (ECS, 3),
            (RDS, 3),
            (HOME, 1),
        ],
        _ => &[(EC2, 4), (ECS, 2), (LOGS, 2), (LAMBDA, 1), (HOME, 1)],
    }
}

/// Occasional changes (and attempts the permission set refuses), each with its chance per
/// visit to the account.
fn changes(login: &str, account: usize) -> &'static [(&'static str, f64, bool)] {
    match (login, account) {
        ("alice.martin", PROD) => &[
            ("monitoring:PutMetricAlarm", 0.15, false),
            ("ecs:UpdateService", 0.1, false),
        ],
        ("alice.martin", DEV) => &[("ec2:StopInstances", 0.2, false)],
        ("bilal.okafor", MGMT) => &[
            ("securityhub:BatchUpdateFindings", 0.3, false),
            ("guardduty:ArchiveFindings", 0.2, false),
        ],
        ("chen.wei", DEV) => &[
            ("lambda:UpdateFunctionCode20150331v2", 0.3, false),
            ("iam:ListRoles", 0.1, true),
        ],
        ("dana.kowalski", DEV) => &[
            ("ec2:StartInstances", 0.25, false),
            ("ec2:StopInstances", 0.25, false),
            ("ssm:StartSession", 0.3, false),
        ],
        ("dana.kowalski", PROD) => &[("ssm:StartSession", 0.15, true)],
        _ => &[],
    }
}

fn change_request(action: &str, r: &Resources, rng: &mut Rng) -> Option<Value> {
    let instance = format!("i-0{}", rng.hex(16));
    Some(match action {
        "ec2:StartInstances" | "ec2:StopInstances" => {
            json!({ "instancesSet": { "items": [{ "instanceId": instance }] } })
        }
        "ssm:StartSession" => json!({ "target": instance }),
        "ecs:UpdateService" => {
            json!({ "cluster": r.cluster, "service": r.service, "desiredCount": rng.range(2, 6) })
        }
        "monitoring:PutMetricAlarm" => {
            json!({ "alarmName": format!("{}-latency-p99", r.service), "threshold": 1.5, "evaluationPeriods": 5 })
        }
        "lambda:UpdateFunctionCode20150331v2" => {
            json!({ "functionName": r.function, "zipFile": "HIDDEN_DUE_TO_SECURITY_REASONS", "publish": false })
        }
        "securityhub:BatchUpdateFindings" => {
            json!({ "findingIdentifiers": [{ "id": rng.uuid(), "productArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty" }], "workflow": { "status": "RESOLVED" } })
        }
        "guardduty:ArchiveFindings" => {
            json!({ "detectorId": rng.hex(32), "findingIds": [rng.hex(32)] })
        }
        _ => return params::request(action, r),
    })
}

fn set_name(set: PermissionSet) -> &'static str {
    match set {
        PermissionSet::Admin => "AdministratorAccess",
        PermissionSet::ReadOnly => "ReadOnlyAccess",
        PermissionSet::PowerUser => "PowerUserAccess",
    }
}

/// Portal activity in the management account: what the person sees before any account.
fn portal(
    ctx: &mut Ctx,
    rng: &mut Rng,
    p: &Person,
    ip: &str,
    t: Timestamp,
    calls: &[(&str, Value)],
) {
    let credential = rng.alnum(48);
    let id = identity::identity_center(ctx.org, p, &credential);
    let actor = Actor::new(MGMT, id, ip, agents::browser(p.browser), Origin::Client);
    for (i, (action, request)) in calls.iter().enumerate() {
        let call = Call::new(plus(t, i as i64), GLOBAL, action)
            .req(request.clone())
            .version("1.10");
        ctx.emit(call, &actor, rng);
    }
}

/// Signs a person in to one account and returns their role session.
fn sign_in(
    ctx: &mut Ctx,
    rng: &mut Rng,
    p: &Person,
    visit: (usize, PermissionSet),
    ip: &str,
    t: Timestamp,
    cli: bool,
) -> Actor {
    let org = ctx.org;
    let (account, set) = visit;
    let acct = &org.accounts[account];
    let role = acct.sso_role(set);
    let target = json!({ "accountId": acct.id.as_str(), "roleName": set_name(set) });
    let key = identity::session_key(rng);
    let browser = agents::browser(p.browser);
    if cli {
        portal(ctx, rng, p, ip, t, &[("sso:GetRoleCredentials", target)]);
        let id = identity::assumed_role(role, &p.email, &key, t, SessionKind::Plain);
        return Actor::new(account, id, ip, "", Origin::Client);
    }
    let listing = json!({ "accountId": acct.id.as_str() });
    portal(
        ctx,
        rng,
        p,
        ip,
        t,
        &[
            ("sso:ListAccounts", Value::Null),
            ("sso:ListAccountRoles", listing),
            ("sso:Federate", target),
        ],
    );
    let t = plus(t, 3);
    let saml = Actor::new(account, identity::saml(org, p), ip, browser, Origin::Client);
    let assume = Call::new(t, GLOBAL, "sts:AssumeRoleWithSAML")
        .req(json!({
            "sAMLAssertionID": format!("_{}", rng.hex(32)), "roleSessionName": p.email,
            "principalArn": acct.saml_provider_arn(), "roleArn": role.arn(), "durationSeconds": 28800
        }))
        .resp(json!({
            "credentials": { "accessKeyId": key, "sessionToken": session_token(rng), "expiration": sts_time(plus(t, 28800)) },
            "assumedRoleUser": { "assumedRoleId": format!("{}:{}", role.id, p.email), "arn": role.session_arn(&p.email) },
            "packedPolicySize": 1, "subject": p.email, "subjectType": "persistent",
            "issuer": format!("https://portal.sso.us-east-1.amazonaws.com/saml/assertion/{}", rng.alnum(24)),
            "audience": "https://signin.aws.amazon.com/saml", "nameQualifier": org.saml_issuer
        }));
    ctx.emit(assume, &saml, rng);
    let id = identity::assumed_role(role, &p.email, &key, t, SessionKind::Plain);
    let console = Actor::new(account, id, ip, browser, Origin::Console);
    let login = Call::new(plus(t, 1), GLOBAL, "signin:ConsoleLogin")
        .sign_in()
        .resp(json!({ "ConsoleLogin": "Success" }))
        .extra(json!({
            "LoginTo": format!("https://console.aws.amazon.com/console/home?region={}", acct.home),
            "MobileVersion": "No", "MFAUsed": "No", "SamlProviderArn": acct.saml_provider_arn()
        }));
    ctx.emit(login, &console, rng);
    console
}

/// One visit to one account: sign in, browse until `end`, maybe change something.
fn visit(
    ctx: &mut Ctx,
    rng: &mut Rng,
    p: &Person,
    access: (usize, PermissionSet),
    ip: &str,
    span: (Timestamp, Timestamp),
) {
    let (account, _) = access;
    let res = Resources::of(&ctx.org.accounts[account]);
    let cli = p.cli && account == DEV && rng.chance(0.5);
    let mut session = sign_in(ctx, rng, p, access, ip, span.0, cli);
    let browser = agents::browser(p.browser);
    let mut t = plus(span.0, rng.range(10, 60));
    // Lunch, some time around noon.
    let lunch_start = at(span.0.day_start(), 11, rng.range(20, 110), 0);
    let lunch_end = plus(lunch_start, rng.range(30, 60) * 60);
    while t < span.1 {
        if t >= lunch_start && t < lunch_end {
            t = plus(lunch_end, rng.range(0, 300));
            continue;
        }
        let page = rng.weighted(pages(p.login, account));
        for action in page.iter() {
            t = plus(t, rng.range(0, 2));
            let region = if *action == "s3:ListBuckets" {
                GLOBAL
            } else {
                region_of(action, res.region)
            };
            let mut call = Call::new(t, region, action);
            if let Some(request) = params::request(action, &res) {
                call = call.req(request);
            }
            session.agent = if cli {
                agents::cli_mac(action)
            } else if rng.chance(0.25) {
                agents::AWS_INTERNAL.to_string()
            } else {
                browser.to_string()
            };
            ctx.emit(call, &session, rng);
        }
        t = plus(t, rng.range(120, 1200));
    }
    for (action, chance, denied) in changes(p.login, account) {
        if !rng.chance(*chance) {
            continue;
        }
        let t = Timestamp::from_unix(
            rng.range(span.0.unix() + 120, span.1.unix().max(span.0.unix() + 121)),
        );
        let mut call = Call::new(t, region_of(action, res.region), action);
        if let Some(request) = change_request(action, &res, rng) {
            call = call.req(request);
        }
        if *denied {
            let arn = ctx.org.accounts[account]
                .sso_role(access.1)
                .session_arn(&p.email);
            call = call.error("AccessDenied", &denied_message(&arn, action));
        }
        session.agent = if cli {
            agents::cli_mac(action)
        } else {
            browser.to_string()
        };
        ctx.emit(call, &session, rng);
    }
}

pub fn console_users(ctx: &mut Ctx) {
    let org = ctx.org;
    for p in &org.people {
        let mut rng = ctx.rng(&format!("person/{}", p.login));
        let days: Vec<Timestamp> = ctx.days().collect();
        for day in days {
            let (start, length) = if is_workday(day) {
                if !rng.chance(0.92) {
                    continue;
                }
                (
                    at(day, rng.range(7, 8), rng.range(0, 59), rng.range(0, 59)),
                    rng.range(450, 570) * 60,
                )
            } else {
                // Weekend: now and then someone on call takes a quick look.
                if !rng.chance(0.08) {
                    continue;
                }
                (
                    at(day, rng.range(10, 19), rng.range(0, 59), 0),
                    rng.range(15, 50) * 60,
                )
            };
            let ip = if is_workday(day) && rng.chance(0.75) {
                rng.pick(&org.office_ips).clone()
            } else {
                p.home_ip.clone()
            };
            let main = *rng.weighted(&[(0usize, 6), (1, 3), (2, 1)]) % p.access.len();
            let end = plus(start, length);
            let switch = rng.chance(0.3) && p.access.len() > 1 && length > 3600;
            let split = if switch {
                plus(start, length * 3 / 5)
            } else {
                end
            };
            visit(ctx, &mut rng, p, p.access[main], &ip, (start, split));
            if switch {
                let other = (main + 1) % p.access.len();
                let from = plus(split, rng.range(60, 600));
                if from < end {
                    visit(ctx, &mut rng, p, p.access[other], &ip, (from, end));
                }
            }
        }
    }
}
