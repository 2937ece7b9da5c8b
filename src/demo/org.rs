//! The synthetic organisation: its accounts, regions, IAM roles and users, the people who sign
//! in, and the addresses they come from. Everything here is derived from the seed and then
//! only read; the activity modules decide what these identities do.

use std::io;

use crate::cloudtrail::AccountId;

use super::rng::Rng;

/// Where global services (IAM, STS's global endpoint, sign-in, CloudTrail's own console)
/// record their events.
pub const GLOBAL: &str = "us-east-1";
/// The regions the organisation uses; every account's trail covers all of them.
pub const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "us-west-2"];

/// Indexes into [`Org::accounts`].
pub const MGMT: usize = 0;
pub const PROD: usize = 1;
pub const DEV: usize = 2;

/// An IAM role as its ARN and unique id show it.
#[derive(Clone, Debug)]
pub struct Role {
    pub account: String,
    /// `/`, `/ci/`, `/aws-reserved/sso.amazonaws.com/`, ...
    pub path: String,
    pub name: String,
    /// The `AROA...` unique id.
    pub id: String,
}

impl Role {
    fn new(rng: &mut Rng, account: &str, path: &str, name: &str) -> Self {
        Role {
            account: account.to_string(),
            path: path.to_string(),
            name: name.to_string(),
            id: format!("AROA{}", rng.iam_chars(17)),
        }
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:role{}{}",
            self.account, self.path, self.name
        )
    }

    /// The STS ARN of one session of this role.
    pub fn session_arn(&self, session: &str) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{session}",
            self.account, self.name
        )
    }
}

/// An IAM user with one long-lived access key.
#[derive(Clone, Debug)]
pub struct User {
    pub account: String,
    pub name: String,
    /// The `AIDA...` unique id.
    pub id: String,
    /// Its `AKIA...` access key id.
    pub key: String,
}

impl User {
    pub fn new(rng: &mut Rng, account: &str, name: &str) -> Self {
        User {
            account: account.to_string(),
            name: name.to_string(),
            id: format!("AIDA{}", rng.iam_chars(17)),
            key: format!("AKIA{}", rng.iam_chars(16)),
        }
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account, self.name)
    }
}

/// The IAM Identity Center permission sets, each provisioned as an `AWSReservedSSO_` role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionSet {
    Admin,
    ReadOnly,
    PowerUser,
}

/// One member account and the identities that live in it.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: AccountId,
    pub name: &'static str,
    /// The region where its workloads run.
    pub home: &'static str,
    pub sso_admin: Role,
    pub sso_read_only: Role,
    pub sso_power_user: Role,
    /// `AWSSSO_<hex>_DO_NOT_DELETE`, the SAML provider Identity Center creates in each account.
    pub saml_provider: String,
    /// GitHub Actions deploys through this role (OIDC web identity federation).
    pub ci: Role,
    /// A monitoring vendor assumes this role from its own account.
    pub monitoring: Role,
    /// AWS Config's service-linked role.
    pub config: Role,
    /// The role of the account's scheduled Lambda function, and that function's name.
    pub lambda: Role,
    pub lambda_function: &'static str,
    /// The interface VPC endpoint private workloads reach AWS APIs through.
    pub vpce: String,
}

impl Account {
    pub fn sso_role(&self, set: PermissionSet) -> &Role {
        match set {
            PermissionSet::Admin => &self.sso_admin,
            PermissionSet::ReadOnly => &self.sso_read_only,
            PermissionSet::PowerUser => &self.sso_power_user,
        }
    }

    pub fn saml_provider_arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:saml-provider/{}",
            self.id, self.saml_provider
        )
    }

    pub fn oidc_provider_arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com",
            self.id
        )
    }
}

/// Which browser a person signs in with; it decides their user agent.
#[derive(Clone, Copy, Debug)]
pub enum Browser {
    ChromeMac,
    FirefoxLinux,
    EdgeWindows,
    SafariMac,
}

/// A person who signs in through IAM Identity Center.
#[derive(Clone, Debug)]
pub struct Person {
    pub login: &'static str,
    pub email: String,
    /// The Identity Center user id.
    pub user_id: String,
    pub browser: Browser,
    /// Uses the CLI with `aws sso login` as well as the console.
    pub cli: bool,
    /// The accounts and permission sets this person uses, most used first.
    pub access: Vec<(usize, PermissionSet)>,
    /// The address this person works from when not in the office.
    pub home_ip: String,
}

/// The whole organisation.
#[derive(Clone, Debug)]
pub struct Org {
    /// `o-` and ten characters.
    pub id: String,
    pub accounts: Vec<Account>,
    /// Identity Center's identity store (`d-...`), in the management account.
    pub identity_store: String,
    /// The base64 issuer hash STS shows as the SAML identity provider.
    pub saml_issuer: String,
    pub people: Vec<Person>,
    /// The monitoring vendor's own AWS account and the role it assumes ours from.
    pub vendor_account: String,
    pub vendor_role_id: String,
    pub vendor_ips: Vec<String>,
    /// The `/24` networks of the organisation's GitHub-hosted larger runners (static IPs).
    pub runner_networks: Vec<String>,
    pub office_ips: Vec<String>,
    /// The on-premises backup server that uses `svc-backup`'s keys.
    pub backup_server_ip: String,
    pub billing_host_ip: String,
    /// Production's EC2 instances (SSM-managed) and their private addresses.
    pub instances: Vec<(String, String)>,
    pub instance_role: Role,
    /// Long-lived IAM users.
    pub svc_backup: User,
    pub jenkins_legacy: User,
    pub billing_reporter: User,
    /// The CloudTrail trail names: the organisation trail and production's own trail.
    pub org_trail: &'static str,
    pub prod_trail: &'static str,
    /// The bucket the organisation trail delivers to.
    pub trail_bucket: String,
}

fn account_id(rng: &mut Rng) -> io::Result<AccountId> {
    let text = format!("{}{}", rng.range(1, 9), rng.digits(11));
    AccountId::parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn account(
    rng: &mut Rng,
    name: &'static str,
    home: &'static str,
    fun: &'static str,
) -> io::Result<Account> {
    let id = account_id(rng)?;
    let a = id.as_str().to_string();
    let sso = "/aws-reserved/sso.amazonaws.com/";
    let sso_admin = format!("AWSReservedSSO_AdministratorAccess_{}", rng.hex(16));
    let sso_read_only = format!("AWSReservedSSO_ReadOnlyAccess_{}", rng.hex(16));
    let sso_power_user = format!("AWSReservedSSO_PowerUserAccess_{}", rng.hex(16));
    Ok(Account {
        sso_admin: Role::new(rng, &a, sso, &sso_admin),
        sso_read_only: Role::new(rng, &a, sso, &sso_read_only),
        sso_power_user: Role::new(rng, &a, sso, &sso_power_user),
        saml_provider: format!("AWSSSO_{}_DO_NOT_DELETE", rng.hex(16)),
        ci: Role::new(rng, &a, "/ci/", "github-deploy"),
        monitoring: Role::new(rng, &a, "/", "MonitoringVendorReadOnly"),
        config: Role::new(
            rng,
            &a,
            "/aws-service-role/config.amazonaws.com/",
            "AWSServiceRoleForConfig",
        ),
        lambda: Role::new(rng, &a, "/service-role/", &format!("{fun}-role")),
        lambda_function: fun,
        vpce: format!("vpce-0{}", rng.hex(16)),
        id,
        name,
        home,
    })
}

fn public_ip(rng: &mut Rng, first: &[u8]) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.pick(first),
        rng.range(1, 254),
        rng.range(1, 254),
        rng.range(2, 250)
    )
}

impl Org {
    pub fn build(seed: u64) -> io::Result<Org> {
        let mut rng = Rng::stream(seed, "org");
        let id = format!("o-{}", rng.alnum(10).to_ascii_lowercase());
        let accounts = vec![
            account(&mut rng, "acme-security", GLOBAL, "org-guardrails")?,
            account(&mut rng, "acme-prod", "eu-west-1", "order-export")?,
            account(&mut rng, "acme-dev", "us-west-2", "image-resize")?,
        ];
        let prod = accounts[PROD].id.as_str().to_string();
        let mgmt = accounts[MGMT].id.as_str().to_string();
        let domain = "acme-corp.example";
        let mut person =
            |login: &'static str, browser, cli, access: Vec<(usize, PermissionSet)>| Person {
                login,
                email: format!("{login}@{domain}"),
                user_id: rng.uuid(),
                browser,
                cli,
                access,
                home_ip: public_ip(&mut rng, &[81, 86, 92, 178]),
            };
        use PermissionSet::*;
        let people = vec![
            person(
                "alice.martin",
                Browser::ChromeMac,
                false,
                vec![(PROD, Admin), (MGMT, Admin), (DEV, Admin)],
            ),
            person(
                "bilal.okafor",
                Browser::FirefoxLinux,
                false,
                vec![(MGMT, ReadOnly), (PROD, ReadOnly)],
            ),
            person(
                "chen.wei",
                Browser::SafariMac,
                true,
                vec![(DEV, PowerUser), (PROD, ReadOnly)],
            ),
            person(
                "dana.kowalski",
                Browser::EdgeWindows,
                false,
                vec![(PROD, ReadOnly), (DEV, PowerUser)],
            ),
        ];
        let instances = (0..2)
            .map(|i| {
                (
                    format!("i-0{}", rng.hex(16)),
                    format!("10.20.{}.{}", 10 + i * 16, rng.range(10, 250)),
                )
            })
            .collect();
        let vendor_ips = (0..4)
            .map(|_| public_ip(&mut rng, &[3, 34, 44, 54]))
            .collect();
        // A stream of its own, so adding runners moved none of the ids above or below.
        let mut runners = Rng::stream(seed, "org/runners");
        let runner_networks = (0..6)
            .map(|_| {
                let first = *runners.pick(&[4u8, 13, 20, 40, 52]);
                format!(
                    "{first}.{}.{}",
                    runners.range(1, 254),
                    runners.range(0, 255)
                )
            })
            .collect();
        Ok(Org {
            runner_networks,
            identity_store: format!("d-{}", rng.hex(10)),
            saml_issuer: format!("{}=", rng.alnum(27)),
            vendor_account: format!("{}{}", rng.range(1, 9), rng.digits(11)),
            vendor_role_id: format!("AROA{}", rng.iam_chars(17)),
            vendor_ips,
            office_ips: vec![
                public_ip(&mut rng, &[62, 80, 217]),
                public_ip(&mut rng, &[62, 80, 217]),
            ],
            backup_server_ip: public_ip(&mut rng, &[62, 80, 217]),
            billing_host_ip: public_ip(&mut rng, &[62, 80, 217]),
            instances,
            instance_role: Role::new(&mut rng, &prod, "/", "app-server-role"),
            svc_backup: User::new(&mut rng, &prod, "svc-backup"),
            jenkins_legacy: User::new(&mut rng, &prod, "jenkins-legacy"),
            billing_reporter: User::new(&mut rng, &mgmt, "billing-reporter"),
            org_trail: "acme-org-trail",
            prod_trail: "prod-audit-trail",
            trail_bucket: format!("acme-cloudtrail-{}", rng.digits(6)),
            people,
            accounts,
            id,
        })
    }

    pub fn account_id(&self, account: usize) -> &str {
        self.accounts[account].id.as_str()
    }
}
