//! The attacks injected into the hunt hour, each modelled on a real technique (the Stratus Red
//! Team detonations and incident write-ups show the same calls): stolen instance credentials,
//! a leaked key used to mint keys for another user, CloudTrail tampering, a backdoor admin
//! user signing in without MFA, an enumeration burst of denied calls, and a root sign-in.
//!
//! Every event of one attack has one principal, so the manifest can name it.

use serde_json::json;

use crate::cloudtrail::Timestamp;

use super::agents;
use super::event::{denied_message, Call, Event, Kind};
use super::identity::{self, Actor, Origin, SessionKind};
use super::org::{User, DEV, GLOBAL, MGMT, PROD};
use super::rng::Rng;
use super::routine::{start_run, Ctx};

/// An attack as planned, before its records are read back for the manifest.
pub struct Planned {
    pub name: &'static str,
    pub description: String,
    pub account: usize,
}

struct Attacks<'a> {
    ctx: Ctx<'a>,
    rng: Rng,
    planned: Vec<Planned>,
    start: Timestamp,
}

impl Attacks<'_> {
    fn at(&self, minute: i64, second: i64) -> Timestamp {
        Timestamp::from_unix(self.start.unix() + minute * 60 + second)
    }

    fn begin(&mut self, name: &'static str, account: usize, description: String) {
        self.planned.push(Planned {
            name,
            description,
            account,
        });
    }

    fn emit(&mut self, call: Call, actor: &Actor) {
        let kind = Kind::Attack(self.planned.len() - 1);
        self.ctx.emit_as(call, actor, &mut self.rng, kind);
    }

    fn ip(&mut self, prefix: &str) -> String {
        format!("{prefix}.{}", self.rng.range(2, 250))
    }
}

/// Generates the attacks of the hour starting at `hunt_start`. All their events fall between
/// 5 and 45 minutes into the hour, so they are delivered inside it.
pub fn inject(
    org: &super::org::Org,
    seed: u64,
    hunt_start: Timestamp,
    end: Timestamp,
) -> (Vec<Planned>, Vec<Event>) {
    let mut a = Attacks {
        ctx: Ctx::new(org, seed, hunt_start, end),
        rng: Rng::stream(seed, "attacks"),
        planned: Vec::new(),
        start: hunt_start,
    };
    instance_credentials(&mut a);
    let (stolen, ip) = access_key_for_another_user(&mut a);
    stop_logging(&mut a, &stolen, &ip);
    let backdoor = backdoor_user(&mut a);
    console_login_without_mfa(&mut a, &backdoor);
    denied_burst(&mut a);
    root_login(&mut a);
    (a.planned, a.ctx.events)
}

fn instance_credentials(a: &mut Attacks) {
    let org = a.ctx.org;
    let (instance, _) = &org.instances[0];
    let ip = a.ip("193.189.100");
    let role = &org.instance_role;
    a.begin(
        "instance-credentials-exfiltrated",
        PROD,
        format!(
            "The credentials of {instance}'s instance role {} are used from {ip} outside AWS with the AWS CLI \
             for discovery; the role normally makes only SSM and CloudWatch agent calls through a VPC endpoint",
            role.name
        ),
    );
    let key = identity::session_key(&mut a.rng);
    let created = a.at(-90, 0);
    let id = identity::assumed_role(role, instance, &key, created, SessionKind::Ec2);
    let actor = Actor::new(PROD, id, &ip, "", Origin::Client);
    let home = org.accounts[PROD].home;
    let steps: [(&str, &'static str, i64); 5] = [
        ("sts:GetCallerIdentity", GLOBAL, 0),
        ("ec2:DescribeInstances", GLOBAL, 9),
        ("ec2:DescribeInstances", home, 15),
        ("s3:ListBuckets", GLOBAL, 31),
        ("iam:ListRoles", GLOBAL, 48),
    ];
    for (action, region, second) in steps {
        let mut call = Call::new(a.at(8, second), region, action);
        call = match action {
            "ec2:DescribeInstances" => call.req(json!({ "instancesSet": {}, "filterSet": {} })),
            "s3:ListBuckets" => call.req(json!({ "Host": "s3.amazonaws.com" })),
            _ => call,
        };
        a.emit(call, &actor.with_agent(&agents::cli_linux(action)));
    }
}

/// Returns the user whose new key the intruder now holds (with that key), and where from.
fn access_key_for_another_user(a: &mut Attacks) -> (User, String) {
    let org = a.ctx.org;
    let user = &org.svc_backup;
    let target = &org.jenkins_legacy;
    let ip = a.ip("185.220.101");
    a.begin(
        "access-key-for-another-user",
        PROD,
        format!(
            "svc-backup's long-lived key, normally used only by the backup server at night, lists users and \
             creates an access key for {} from {ip}",
            target.name
        ),
    );
    let actor = Actor::new(PROD, identity::iam_user(user), &ip, "", Origin::Client);
    let new_key = format!("AKIA{}", a.rng.iam_chars(16));
    let t = a.at(17, 4);
    let steps = [
        (
            Call::new(t, GLOBAL, "sts:GetCallerIdentity"),
            "sts:GetCallerIdentity",
        ),
        (
            Call::new(a.at(17, 21), GLOBAL, "iam:ListUsers").req(json!({ "maxItems": 100 })),
            "iam:ListUsers",
        ),
        (
            Call::new(a.at(17, 40), GLOBAL, "iam:ListAccessKeys")
                .req(json!({ "userName": target.name })),
            "iam:ListAccessKeys",
        ),
        (
            Call::new(a.at(17, 52), GLOBAL, "iam:CreateAccessKey")
                .req(json!({ "userName": target.name }))
                .resp(json!({ "accessKey": {
                    "userName": target.name, "accessKeyId": new_key, "status": "Active",
                    "createDate": super::event::sts_time(a.at(17, 52))
                } })),
            "iam:CreateAccessKey",
        ),
    ];
    for (call, action) in steps {
        a.emit(call, &actor.with_agent(&agents::cli_linux(action)));
    }
    let stolen = User {
        key: new_key,
        ..target.clone()
    };
    (stolen, ip)
}

fn stop_logging(a: &mut Attacks, user: &User, ip: &str) {
    let org = a.ctx.org;
    let region = org.accounts[PROD].home;
    let trail_arn = format!(
        "arn:aws:cloudtrail:{region}:{}:trail/{}",
        user.account, org.prod_trail
    );
    a.begin(
        "cloudtrail-stop-logging",
        PROD,
        format!(
            "{} (dormant, with the key just minted for it) stops, blinds and deletes the account trail {} from {ip}",
            user.name, org.prod_trail
        ),
    );
    let actor = Actor::new(PROD, identity::iam_user(user), ip, "", Origin::Client);
    let steps = [
        (Call::new(a.at(23, 10), GLOBAL, "sts:GetCallerIdentity"), "sts:GetCallerIdentity"),
        (Call::new(a.at(23, 31), region, "cloudtrail:DescribeTrails").req(json!({ "trailNameList": [], "includeShadowTrails": true })), "cloudtrail:DescribeTrails"),
        (Call::new(a.at(23, 44), region, "cloudtrail:GetTrailStatus").req(json!({ "name": trail_arn })), "cloudtrail:GetTrailStatus"),
        (Call::new(a.at(24, 2), region, "cloudtrail:StopLogging").req(json!({ "name": trail_arn })), "cloudtrail:StopLogging"),
        (
            Call::new(a.at(24, 30), region, "cloudtrail:PutEventSelectors")
                .req(json!({ "trailName": trail_arn, "eventSelectors": [{ "readWriteType": "ReadOnly", "includeManagementEvents": false, "dataResources": [], "excludeManagementEventSources": [] }] }))
                .resp(json!({ "trailARN": trail_arn, "eventSelectors": [{ "readWriteType": "ReadOnly", "includeManagementEvents": false, "dataResources": [], "excludeManagementEventSources": [] }] })),
            "cloudtrail:PutEventSelectors",
        ),
        (Call::new(a.at(25, 3), region, "cloudtrail:DeleteTrail").req(json!({ "name": trail_arn })), "cloudtrail:DeleteTrail"),
    ];
    for (call, action) in steps {
        a.emit(call, &actor.with_agent(&agents::cli_linux(action)));
    }
}

/// A GitHub Actions run of the development account creates an administrator; returns it.
fn backdoor_user(a: &mut Attacks) -> User {
    let org = a.ctx.org;
    let acct = &org.accounts[DEV];
    let backdoor = User::new(&mut a.rng, acct.id.as_str(), "support-ops");
    // The token exchange itself is the job's usual first step, not part of the attack.
    let t = a.at(29, 0);
    let mut session = start_run(&mut a.ctx, &mut a.rng, DEV, t);
    a.begin(
        "backdoor-admin-user",
        DEV,
        format!(
            "A workflow run of the GitHub deploy role, instead of Terraform, uses the AWS CLI to create the IAM user \
             {} with AdministratorAccess and a console password",
            backdoor.name
        ),
    );
    let name = &backdoor.name;
    let steps = [
        (
            Call::new(a.at(29, 40), GLOBAL, "iam:CreateUser").req(json!({ "userName": name })).resp(json!({ "user": {
                "path": "/", "userName": name, "userId": backdoor.id, "arn": backdoor.arn(),
                "createDate": super::event::sts_time(a.at(29, 40))
            } })),
            "iam:CreateUser",
        ),
        (
            Call::new(a.at(29, 47), GLOBAL, "iam:AttachUserPolicy")
                .req(json!({ "userName": name, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess" })),
            "iam:AttachUserPolicy",
        ),
        (
            Call::new(a.at(29, 55), GLOBAL, "iam:CreateLoginProfile")
                .req(json!({ "userName": name, "passwordResetRequired": false }))
                .resp(json!({ "loginProfile": { "userName": name, "createDate": super::event::sts_time(a.at(29, 55)), "passwordResetRequired": false } })),
            "iam:CreateLoginProfile",
        ),
    ];
    for (call, action) in steps {
        session.agent = agents::cli_linux(action);
        a.emit(call, &session);
    }
    backdoor
}

fn console_login_without_mfa(a: &mut Attacks, user: &User) {
    let org = a.ctx.org;
    let acct = &org.accounts[DEV];
    let ip = a.ip("185.220.101");
    a.begin(
        "new-user-console-login-without-mfa",
        DEV,
        format!("The IAM user {} created minutes earlier signs in to the console without MFA from {ip} and looks around", user.name),
    );
    let browser = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0";
    let login_id = identity::iam_user_with_key(user, None);
    let login = Call::new(a.at(34, 12), GLOBAL, "signin:ConsoleLogin")
        .sign_in()
        .resp(json!({ "ConsoleLogin": "Success" }))
        .extra(json!({ "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true", "MobileVersion": "No", "MFAUsed": "No" }));
    a.emit(
        login,
        &Actor::new(DEV, login_id, &ip, browser, Origin::Console),
    );
    let key = identity::session_key(&mut a.rng);
    let console = Actor::new(
        DEV,
        identity::iam_user_with_key(user, Some(&key)),
        &ip,
        browser,
        Origin::Console,
    );
    let steps: [(&str, &'static str, i64, i64); 3] = [
        ("iam:ListUsers", GLOBAL, 34, 50),
        ("ec2:DescribeInstances", acct.home, 35, 20),
        ("secretsmanager:ListSecrets", acct.home, 35, 58),
    ];
    for (action, region, minute, second) in steps {
        a.emit(Call::new(a.at(minute, second), region, action), &console);
    }
}

fn denied_burst(a: &mut Attacks) {
    let org = a.ctx.org;
    let acct = &org.accounts[DEV];
    let role = &acct.lambda;
    let home = acct.home;
    a.begin(
        "denied-burst",
        DEV,
        format!(
            "The {} function's role, taken over through the function, enumerates IAM, Secrets Manager, SSM, EC2 and \
             more in under a minute; almost every call is denied",
            acct.lambda_function
        ),
    );
    let key = identity::session_key(&mut a.rng);
    let session_arn = role.session_arn(acct.lambda_function);
    let id = identity::assumed_role(
        role,
        acct.lambda_function,
        &key,
        a.at(30, 0),
        SessionKind::Plain,
    );
    let ip = a.ip("44.234.17");
    let actor = Actor::new(DEV, id, &ip, "", Origin::Client);
    let calls: [(&str, &'static str); 26] = [
        ("sts:GetCallerIdentity", home),
        ("iam:ListUsers", GLOBAL),
        ("iam:ListRoles", GLOBAL),
        ("iam:ListGroups", GLOBAL),
        ("iam:ListAttachedRolePolicies", GLOBAL),
        ("iam:GetAccountAuthorizationDetails", GLOBAL),
        ("secretsmanager:ListSecrets", home),
        ("secretsmanager:GetSecretValue", home),
        ("secretsmanager:GetSecretValue", home),
        ("secretsmanager:GetSecretValue", home),
        ("ssm:DescribeParameters", home),
        ("ssm:GetParametersByPath", home),
        ("kms:ListKeys", home),
        ("ec2:DescribeInstances", home),
        ("ec2:DescribeSecurityGroups", home),
        ("ec2:DescribeSnapshots", home),
        ("s3:ListBuckets", GLOBAL),
        ("lambda:ListFunctions20150331", home),
        ("dynamodb:ListTables", home),
        ("rds:DescribeDBInstances", home),
        ("sqs:ListQueues", home),
        ("sns:ListTopics", home),
        ("ecr:DescribeRepositories", home),
        ("organizations:DescribeOrganization", GLOBAL),
        ("cloudtrail:DescribeTrails", home),
        ("iam:ListAccessKeys", GLOBAL),
    ];
    let secrets = ["dev/db/master", "dev/stripe/api-key", "prod/db/master"];
    for (i, (action, region)) in calls.into_iter().enumerate() {
        let jitter = a.rng.range(0, 1);
        let t = a.at(38, 2 * i as i64 + jitter);
        let mut call = Call::new(t, region, action);
        if action == "secretsmanager:GetSecretValue" {
            call = call.req(json!({ "secretId": secrets[(i - 7) % secrets.len()] }));
        }
        if i > 0 {
            let message = denied_message(&session_arn, action);
            call = if action.starts_with("ec2:") {
                call.error(
                    "Client.UnauthorizedOperation",
                    &format!("You are not authorized to perform this operation. {message}"),
                )
            } else {
                call.error("AccessDenied", &message)
            };
        }
        let service = action.split_once(':').map_or(action, |(s, _)| s);
        a.emit(call, &actor.with_agent(&agents::lambda_node(service)));
    }
}

fn root_login(a: &mut Attacks) {
    let org = a.ctx.org;
    let account = org.account_id(MGMT);
    let ip = a.ip("91.132.58");
    a.begin(
        "root-console-login",
        MGMT,
        format!("The management account's root user signs in to the console from {ip} (with MFA) and reviews the account"),
    );
    let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    let login = Call::new(a.at(42, 5), GLOBAL, "signin:ConsoleLogin")
        .sign_in()
        .resp(json!({ "ConsoleLogin": "Success" }))
        .extra(json!({
            "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
            "MobileVersion": "No", "MFAIdentifier": format!("arn:aws:iam::{account}:mfa/root-account-mfa-device"), "MFAUsed": "Yes"
        }));
    a.emit(
        login,
        &Actor::new(
            MGMT,
            identity::root(account, ""),
            &ip,
            browser,
            Origin::Console,
        ),
    );
    let key = identity::session_key(&mut a.rng);
    let console = Actor::new(
        MGMT,
        identity::root(account, &key),
        &ip,
        browser,
        Origin::Console,
    );
    let steps = [
        ("iam:GetAccountSummary", 42, 31),
        ("iam:ListAccountAliases", 42, 33),
        ("account:GetContactInformation", 43, 10),
    ];
    for (action, minute, second) in steps {
        a.emit(Call::new(a.at(minute, second), GLOBAL, action), &console);
    }
}
