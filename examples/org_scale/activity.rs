//! The activity an account shows in an hour, as the rows of trailhound's activity query (the
//! 34 columns of sql/activity.sql), drawn deterministically from the account id.
//!
//! Each account runs the roles an organization deploys everywhere (the organization access
//! role, two Identity Center permission sets, a Terraform deployer, a CI role), a few roles of
//! its own applications, sometimes an IAM user or two, a service-linked role and AWS services
//! (both ignored by default): tens of distinct (principal, action, outcome) rows an hour.
//! From one hour to the next most pairs recur, some accounts' principals do one thing they have
//! not done before, and now and then a new role appears.

use trailhound::source::Samples;

/// Management events, with whether they are read-only.
const ACTIONS: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true),
    ("ec2.amazonaws.com", "DescribeVpcs", true),
    ("ec2.amazonaws.com", "DescribeVolumes", true),
    ("ec2.amazonaws.com", "RunInstances", false),
    ("ec2.amazonaws.com", "CreateTags", false),
    ("iam.amazonaws.com", "GetRole", true),
    ("iam.amazonaws.com", "ListRoles", true),
    ("iam.amazonaws.com", "ListAttachedRolePolicies", true),
    ("iam.amazonaws.com", "GetPolicy", true),
    ("sts.amazonaws.com", "AssumeRole", true),
    ("sts.amazonaws.com", "GetCallerIdentity", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("kms.amazonaws.com", "GenerateDataKey", true),
    ("kms.amazonaws.com", "DescribeKey", true),
    ("logs.amazonaws.com", "CreateLogStream", false),
    ("logs.amazonaws.com", "DescribeLogGroups", true),
    ("logs.amazonaws.com", "PutRetentionPolicy", false),
    ("lambda.amazonaws.com", "ListFunctions20150331", true),
    ("lambda.amazonaws.com", "GetFunction20150331v2", true),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
    ),
    ("cloudformation.amazonaws.com", "DescribeStacks", true),
    ("cloudformation.amazonaws.com", "ListStacks", true),
    ("cloudformation.amazonaws.com", "UpdateStack", false),
    ("ssm.amazonaws.com", "GetParameter", true),
    ("ssm.amazonaws.com", "GetParameters", true),
    ("ssm.amazonaws.com", "DescribeInstanceInformation", true),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
    ("dynamodb.amazonaws.com", "ListTables", true),
    ("ecr.amazonaws.com", "GetAuthorizationToken", true),
    ("ecs.amazonaws.com", "DescribeServices", true),
    ("ecs.amazonaws.com", "UpdateService", false),
    ("rds.amazonaws.com", "DescribeDBInstances", true),
    ("monitoring.amazonaws.com", "GetMetricData", true),
    ("monitoring.amazonaws.com", "PutMetricAlarm", false),
    (
        "elasticloadbalancing.amazonaws.com",
        "DescribeTargetHealth",
        true,
    ),
    (
        "autoscaling.amazonaws.com",
        "DescribeAutoScalingGroups",
        true,
    ),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("s3.amazonaws.com", "GetBucketPolicy", true),
];

/// Roles every account has, by name and path.
const SHARED_ROLES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_3f2a1b0c9d8e7f65",
    "aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnlyAccess_0a1b2c3d4e5f6789",
    "terraform-deployer",
    "github-actions-ci",
];

#[derive(Clone, Debug)]
enum Who {
    Role(String),
    User(String),
    Service(&'static str),
}

#[derive(Clone, Debug)]
struct Pair {
    who: usize,
    action: usize,
    denied: bool,
}

/// One account's habits.
struct Profile {
    principals: Vec<Who>,
    pairs: Vec<Pair>,
}

/// The row counts of one account-hour: all rows, and those of principals that are hunted (not
/// AWS services or service-linked roles, which the default config ignores).
#[derive(Clone, Copy, Debug, Default)]
pub struct RowCount {
    pub rows: u64,
    pub hunted: u64,
}

fn seed(account: &str, salt: u64) -> u64 {
    // FNV-1a over the id, then the salt mixed in.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x0100_0000_01b3)
}

fn pick_actions(rng: &mut fastrand::Rng, n: usize) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    while chosen.len() < n {
        let a = rng.usize(..ACTIONS.len());
        if !chosen.contains(&a) {
            chosen.push(a);
        }
    }
    chosen
}

impl Profile {
    fn of(account: &str) -> Profile {
        let mut rng = fastrand::Rng::with_seed(seed(account, 0));
        let mut principals: Vec<Who> = SHARED_ROLES
            .iter()
            .map(|r| Who::Role(r.to_string()))
            .collect();
        for k in 0..rng.usize(1..=4) {
            principals.push(Who::Role(format!("app-{}-{k}-task", &account[8..])));
        }
        for name in ["backup-agent", "legacy-deploy"]
            .iter()
            .take(rng.usize(0..=2))
        {
            principals.push(Who::User(name.to_string()));
        }
        principals.push(Who::Role(
            "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig".into(),
        ));
        principals.push(Who::Service("config.amazonaws.com"));
        principals.push(Who::Service("cloudtrail.amazonaws.com"));
        let mut pairs = Vec::new();
        for (who, principal) in principals.iter().enumerate() {
            let n = match principal {
                Who::Service(_) => 1,
                Who::Role(r) if r.starts_with("aws-service-role/") => 2,
                _ => rng.usize(2..=7),
            };
            for action in pick_actions(&mut rng, n) {
                pairs.push(Pair {
                    who,
                    action,
                    denied: false,
                });
            }
            // Now and then a principal is refused something.
            if matches!(principal, Who::Role(_) | Who::User(_)) && rng.u32(..20) == 0 {
                pairs.push(Pair {
                    who,
                    action: rng.usize(..ACTIONS.len()),
                    denied: true,
                });
            }
        }
        Profile { principals, pairs }
    }

    /// The pairs seen in `hour`: the whole profile in hour 0; after it most of the profile, with
    /// a few behaviours that are new.
    fn hour(mut self, account: &str, hour: usize) -> Profile {
        if hour == 0 {
            return self;
        }
        let mut rng = fastrand::Rng::with_seed(seed(account, hour as u64 + 1));
        self.pairs.retain(|_| rng.u32(..100) < 85);
        // Three accounts in ten: a principal does something it had not done before.
        if rng.u32(..10) < 3 {
            let who = rng.usize(..SHARED_ROLES.len());
            let action = rng.usize(..ACTIONS.len());
            self.pairs.push(Pair {
                who,
                action,
                denied: false,
            });
        }
        // One account in thirty: a role appears.
        if rng.u32(..30) == 0 {
            self.principals
                .push(Who::Role(format!("incident-{}-{hour}", &account[6..])));
            let who = self.principals.len() - 1;
            for action in pick_actions(&mut rng, 2) {
                self.pairs.push(Pair {
                    who,
                    action,
                    denied: false,
                });
            }
        }
        self
    }
}

/// The activity query's columns, as trailhound's reader expects them.
pub const COLUMNS: &[&str] = &trailhound::source::athena::rows::COLUMNS;

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

/// The result rows of `account`'s activity query for the hour starting at `start` (epoch
/// seconds), in column order.
fn rows(account: &str, hour: usize, start: i64) -> (Vec<Vec<Option<String>>>, RowCount) {
    let profile = Profile::of(account).hour(account, hour);
    let mut rng = fastrand::Rng::with_seed(seed(account, 1000 + hour as u64));
    let mut out = Vec::with_capacity(profile.pairs.len());
    let mut count = RowCount::default();
    let mut seen = std::collections::HashSet::new();
    let regions = ["us-east-1", "eu-west-1", "us-west-2"];
    for pair in &profile.pairs {
        // A behaviour drawn twice is one row, as the query's GROUP BY makes it.
        if !seen.insert((pair.who, pair.action, pair.denied)) {
            continue;
        }
        let (source, name, read_only) = ACTIONS[pair.action];
        let who = &profile.principals[pair.who];
        let calls = if pair.denied {
            rng.u64(1..=3)
        } else {
            rng.u64(1..=120)
        };
        let first = start + rng.i64(0..3000);
        let last = first + rng.i64(0..=(start + 3599 - first));
        let time = |t: i64| trailhound::cloudtrail::Timestamp::from_unix(t).to_string();
        // A principal works from one or two networks, one client and one or two regions of
        // its own; each behaviour keeps to the same ones from hour to hour.
        let habit = seed(&format!("{account}{who:?}"), 11);
        let used_regions: Vec<String> = regions[..1 + (habit as usize & pair.action & 1)]
            .iter()
            .map(|r| r.to_string())
            .collect();
        let network = pair.action as u64 % (1 + (habit >> 8) % 2);
        let ips = vec![format!(
            "10.{}.{}.{}",
            (habit >> 16) as u8,
            (habit >> 24) as u8 ^ network as u8,
            rng.u8(1..)
        )];
        let agents = vec![match who {
            Who::Service(s) => s.to_string(),
            _ if (habit >> 32) % 3 == 0 => format!(
                "aws-cli/2.17.{} md/awscrt#0.20.11 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.9",
                (habit >> 40) % 40
            ),
            _ => format!(
                "aws-sdk-go-v2/1.30.{} os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64",
                (habit >> 40) % 5
            ),
        }];
        let ids: Vec<String> = (0..calls.min(Samples::CAP as u64))
            .map(|_| {
                format!(
                    "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    rng.u32(..),
                    rng.u16(..),
                    rng.u16(..0x1000),
                    rng.u16(..0x1000),
                    rng.u64(..1 << 48)
                )
            })
            .collect();
        let mut v: Vec<Option<String>> = vec![None; COLUMNS.len()];
        let mut set = |column: &str, value: String| {
            let i = COLUMNS.iter().position(|c| *c == column).expect("a column");
            v[i] = Some(value);
        };
        set("usable", "true".into());
        set("no_identity", "false".into());
        set("recipient_account", account.into());
        let hunted = match who {
            Who::Role(role) => {
                set("identity_type", "AssumedRole".into());
                set("identity_account", account.into());
                let name = role.rsplit('/').next().unwrap_or(role);
                set(
                    "identity_principal_id",
                    format!("AROA{:016X}:session-{}", seed(role, 7) >> 2, rng.u16(..)),
                );
                set("issuer_arn", format!("arn:aws:iam::{account}:role/{role}"));
                set(
                    "identity_arn",
                    format!("arn:aws:sts::{account}:assumed-role/{name}/session"),
                );
                !role.starts_with("aws-service-role/")
            }
            Who::User(user) => {
                set("identity_type", "IAMUser".into());
                set("identity_account", account.into());
                set(
                    "identity_arn",
                    format!("arn:aws:iam::{account}:user/{user}"),
                );
                set("identity_user_name", user.clone());
                set(
                    "identity_principal_id",
                    format!("AIDA{:016X}", seed(user, 9) >> 2),
                );
                true
            }
            Who::Service(service) => {
                set("identity_type", "AWSService".into());
                set("identity_invoked_by", service.to_string());
                false
            }
        };
        set("eventsource", source.into());
        set("eventname", name.into());
        set(
            "outcome",
            if pair.denied { "denied" } else { "success" }.into(),
        );
        set("records", calls.to_string());
        set("calls", calls.to_string());
        set("first_time", time(first));
        set("last_time", time(last));
        set("regions_distinct", used_regions.len().to_string());
        set("regions", json_list(&used_regions));
        set("source_ips", json_list(&ips));
        set("source_ips_distinct", "1".into());
        set("user_agents", json_list(&agents));
        set("user_agents_distinct", "1".into());
        if pair.denied {
            set("error_codes", json_list(&["AccessDenied".to_string()]));
            set("error_codes_distinct", "1".into());
        } else {
            set("error_codes_distinct", "0".into());
        }
        set("event_ids_distinct", calls.to_string());
        set("event_ids", json_list(&ids));
        let (ro, w) = if read_only { (calls, 0) } else { (0, calls) };
        set("read_only_calls", ro.to_string());
        set("write_calls", w.to_string());
        set("logins_without_mfa", "0".into());
        set("instance_calls", "0".into());
        count.rows += 1;
        if hunted {
            count.hunted += 1;
        }
        out.push(v);
    }
    (out, count)
}

/// The rows `account` shows in `hour` (which starts at `start`, epoch seconds), counted.
pub fn count(account: &str, hour: usize, start: i64) -> RowCount {
    rows(account, hour, start).1
}

/// A registration body of one result with `columns` and no rows.
pub fn empty(emulator_account: &str, region: &str, columns: &[&str]) -> String {
    body(emulator_account, region, columns, &[])
}

fn body(
    emulator_account: &str,
    region: &str,
    columns: &[&str],
    data: &[Vec<Option<String>>],
) -> String {
    let cell = |v: &Option<String>| match v {
        Some(text) => serde_json::json!({ "VarCharValue": text }),
        None => serde_json::json!({}),
    };
    let mut result_rows = vec![serde_json::json!({
        "Data": columns.iter().map(|c| serde_json::json!({"VarCharValue": c})).collect::<Vec<_>>()
    })];
    for row in data {
        result_rows.push(serde_json::json!({ "Data": row.iter().map(cell).collect::<Vec<_>>() }));
    }
    let info: Vec<serde_json::Value> = columns
        .iter()
        .map(|c| serde_json::json!({"Name": c, "Label": c, "Type": "varchar", "Nullable": "UNKNOWN"}))
        .collect();
    serde_json::json!({
        "account_id": emulator_account,
        "region": region,
        "results": [{ "rows": result_rows, "column_info": info }],
    })
    .to_string()
}

/// The emulator's registration body for `account`'s activity query in `hour`: one result, a
/// header row then the data rows, every value text as Athena returns it.
pub fn registration(
    emulator_account: &str,
    region: &str,
    account: &str,
    hour: usize,
    start: i64,
) -> String {
    let (data, _) = rows(account, hour, start);
    body(emulator_account, region, COLUMNS, &data)
}
