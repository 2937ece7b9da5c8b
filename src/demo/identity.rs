//! Who makes a call: the `userIdentity` object of every identity type, in the shapes CloudTrail
//! writes, and the [`Actor`] that pairs one identity with where its calls come from.

use crate::cloudtrail::Timestamp;

use super::json::Obj;
use super::org::{Account, Org, Person, Role, User};

/// How a call reached AWS; it decides `sourceIPAddress`, `userAgent`, `tlsDetails` and the
/// console and VPC-endpoint markers.
#[derive(Clone, Debug)]
pub enum Origin {
    /// An SDK, CLI or tool on some host.
    Client,
    /// The AWS console on behalf of a signed-in person (`sessionCredentialFromConsole`).
    Console,
    /// A private workload through an interface VPC endpoint.
    Endpoint { vpce: String, owner: String },
    /// An AWS service acting itself or for a role: its name stands for address and agent.
    Service,
}

/// One identity in one session, with the address and agent its calls carry.
#[derive(Clone, Debug)]
pub struct Actor {
    pub account: usize,
    /// The serialised `userIdentity`.
    pub identity: String,
    pub ip: String,
    pub agent: String,
    pub origin: Origin,
}

impl Actor {
    pub fn new(account: usize, identity: String, ip: &str, agent: &str, origin: Origin) -> Self {
        Actor {
            account,
            identity,
            ip: ip.to_string(),
            agent: agent.to_string(),
            origin,
        }
    }

    /// An AWS service acting in `account`.
    pub fn service(account: usize, identity: String, service: &'static str) -> Self {
        Actor::new(account, identity, service, service, Origin::Service)
    }

    pub fn with_agent(&self, agent: &str) -> Self {
        Actor {
            agent: agent.to_string(),
            ..self.clone()
        }
    }
}

/// What a role session carries beyond the issuer.
#[derive(Clone, Copy, Debug)]
pub enum SessionKind<'a> {
    Plain,
    /// EC2 instance profile credentials (IMDSv2).
    Ec2,
    /// Credentials from `AssumeRoleWithWebIdentity`; the provider ARN.
    WebIdentity(&'a str),
    /// A service calling with the role's credentials (AWS Config, say).
    InvokedBy(&'a str),
}

/// A temporary `ASIA...` access key id, drawn per session.
pub fn session_key(rng: &mut super::rng::Rng) -> String {
    format!("ASIA{}", rng.iam_chars(16))
}

fn issuer_json(role: &Role) -> String {
    Obj::new()
        .str("type", "Role")
        .str("principalId", &role.id)
        .str("arn", &role.arn())
        .str("accountId", &role.account)
        .str("userName", &role.name)
        .finish()
}

fn attributes(created: Timestamp, mfa: bool) -> String {
    Obj::new()
        .str("creationDate", &created.to_string())
        .str("mfaAuthenticated", if mfa { "true" } else { "false" })
        .finish()
}

/// A role session: the principal is the role, whatever the session is called.
pub fn assumed_role(
    role: &Role,
    session: &str,
    key: &str,
    created: Timestamp,
    kind: SessionKind,
) -> String {
    let web_id = match kind {
        SessionKind::WebIdentity(provider) => Obj::new()
            .str("federatedProvider", provider)
            .raw("attributes", "{}")
            .finish(),
        _ => "{}".to_string(),
    };
    let mut context = Obj::new()
        .raw("sessionIssuer", &issuer_json(role))
        .raw("webIdFederationData", &web_id)
        .raw("attributes", &attributes(created, false));
    if let SessionKind::Ec2 = kind {
        context = context.str("ec2RoleDelivery", "2.0");
    }
    let mut id = Obj::new()
        .str("type", "AssumedRole")
        .str("principalId", &format!("{}:{session}", role.id))
        .str("arn", &role.session_arn(session))
        .str("accountId", &role.account)
        .str("accessKeyId", key)
        .raw("sessionContext", &context.finish());
    if let SessionKind::InvokedBy(service) = kind {
        id = id.str("invokedBy", service);
    }
    id.finish()
}

/// An IAM user calling with its long-lived key.
pub fn iam_user(user: &User) -> String {
    iam_user_with_key(user, Some(&user.key))
}

/// An IAM user with another key (or none, as in console sign-in events).
pub fn iam_user_with_key(user: &User, key: Option<&str>) -> String {
    Obj::new()
        .str("type", "IAMUser")
        .str("principalId", &user.id)
        .str("arn", &user.arn())
        .str("accountId", &user.account)
        .opt_str("accessKeyId", key)
        .str("userName", &user.name)
        .finish()
}

/// The account's root user; console sessions carry an empty access key id, as CloudTrail shows.
pub fn root(account: &str, key: &str) -> String {
    Obj::new()
        .str("type", "Root")
        .str("principalId", account)
        .str("arn", &format!("arn:aws:iam::{account}:root"))
        .str("accountId", account)
        .str("accessKeyId", key)
        .finish()
}

/// A `GetFederationToken` session of an IAM user.
pub fn federated(user: &User, name: &str, key: &str, created: Timestamp) -> String {
    let issuer = Obj::new()
        .str("type", "IAMUser")
        .str("principalId", &user.id)
        .str("arn", &user.arn())
        .str("accountId", &user.account)
        .str("userName", &user.name)
        .finish();
    let context = Obj::new()
        .raw("sessionIssuer", &issuer)
        .raw("webIdFederationData", "{}")
        .raw("attributes", &attributes(created, false))
        .finish();
    Obj::new()
        .str("type", "FederatedUser")
        .str("principalId", &format!("{}:{name}", user.account))
        .str(
            "arn",
            &format!("arn:aws:sts::{}:federated-user/{name}", user.account),
        )
        .str("accountId", &user.account)
        .str("accessKeyId", key)
        .raw("sessionContext", &context)
        .finish()
}

/// An AWS service calling on its own behalf (assuming a role for Lambda, say).
pub fn aws_service(invoked_by: &str) -> String {
    Obj::new()
        .str("type", "AWSService")
        .str("invokedBy", invoked_by)
        .finish()
}

/// The untyped form of service events (`AwsServiceEvent`): only account and service.
pub fn aws_service_event(account: &str, invoked_by: &str) -> String {
    Obj::new()
        .str("accountId", account)
        .str("invokedBy", invoked_by)
        .finish()
}

/// A principal of another account acting through a trust or resource policy.
pub fn aws_account(principal_id: &str, account: &str) -> String {
    Obj::new()
        .str("type", "AWSAccount")
        .str("principalId", principal_id)
        .str("accountId", account)
        .finish()
}

/// A person acting in the Identity Center access portal (management account).
pub fn identity_center(org: &Org, person: &Person, credential_id: &str) -> String {
    let mgmt = org.account_id(super::org::MGMT);
    let on_behalf = Obj::new()
        .str("userId", &person.user_id)
        .str(
            "identityStoreArn",
            &format!(
                "arn:aws:identitystore::{mgmt}:identitystore/{}",
                org.identity_store
            ),
        )
        .finish();
    Obj::new()
        .str("type", "IdentityCenterUser")
        .str("accountId", mgmt)
        .raw("onBehalfOf", &on_behalf)
        .str("credentialId", credential_id)
        .finish()
}

/// The subject of a GitHub Actions OIDC token for the account's deployment environment.
pub fn github_subject(account: &Account) -> String {
    let env = account.name.trim_start_matches("acme-");
    format!("repo:acme-corp/platform:environment:{env}")
}

/// The caller of `AssumeRoleWithWebIdentity`: a GitHub Actions job.
pub fn web_identity(account: &Account, subject: &str) -> String {
    let provider = account.oidc_provider_arn();
    Obj::new()
        .str("type", "WebIdentityUser")
        .str(
            "principalId",
            &format!("{provider}:sts.amazonaws.com:{subject}"),
        )
        .str("userName", subject)
        .str("identityProvider", &provider)
        .finish()
}

/// The caller of `AssumeRoleWithSAML`: a person federating through Identity Center.
pub fn saml(org: &Org, person: &Person) -> String {
    Obj::new()
        .str("type", "SAMLUser")
        .str(
            "principalId",
            &format!("{}:{}", org.saml_issuer, person.email),
        )
        .str("userName", &person.email)
        .str("identityProvider", &org.saml_issuer)
        .finish()
}
