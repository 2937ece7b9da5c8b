//! Who acted: every `userIdentity.type` normalised to one stable, account-scoped key.
//!
//! The key must stay the same across the sessions of one identity (a role assumed by a CI job
//! gets a new session name every run) and differ between identities, or first-seen detection
//! either floods or goes blind.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::record::Record;

/// `userIdentity.type`, with the forms CloudTrail writes today and a catch-all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IdentityType {
    Root,
    IAMUser,
    AssumedRole,
    FederatedUser,
    AWSService,
    AWSAccount,
    IdentityCenterUser,
    WebIdentityUser,
    SAMLUser,
    Unknown,
}

impl IdentityType {
    pub const ALL: [IdentityType; 10] = [
        IdentityType::Root,
        IdentityType::IAMUser,
        IdentityType::AssumedRole,
        IdentityType::FederatedUser,
        IdentityType::AWSService,
        IdentityType::AWSAccount,
        IdentityType::IdentityCenterUser,
        IdentityType::WebIdentityUser,
        IdentityType::SAMLUser,
        IdentityType::Unknown,
    ];

    fn from_cloudtrail(text: &str) -> Self {
        match text {
            "Root" => IdentityType::Root,
            "IAMUser" => IdentityType::IAMUser,
            "AssumedRole" => IdentityType::AssumedRole,
            "FederatedUser" => IdentityType::FederatedUser,
            "AWSService" => IdentityType::AWSService,
            "AWSAccount" => IdentityType::AWSAccount,
            "IdentityCenterUser" => IdentityType::IdentityCenterUser,
            "WebIdentityUser" => IdentityType::WebIdentityUser,
            "SAMLUser" => IdentityType::SAMLUser,
            _ => IdentityType::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IdentityType::Root => "Root",
            IdentityType::IAMUser => "IAMUser",
            IdentityType::AssumedRole => "AssumedRole",
            IdentityType::FederatedUser => "FederatedUser",
            IdentityType::AWSService => "AWSService",
            IdentityType::AWSAccount => "AWSAccount",
            IdentityType::IdentityCenterUser => "IdentityCenterUser",
            IdentityType::WebIdentityUser => "WebIdentityUser",
            IdentityType::SAMLUser => "SAMLUser",
            IdentityType::Unknown => "Unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        IdentityType::ALL.into_iter().find(|t| t.name() == text)
    }
}

impl fmt::Display for IdentityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The normalised actor of a record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// Stable key, unique within the account's baseline: an IAM ARN where one exists
    /// (the role for assumed-role sessions), otherwise `kind:identifier`.
    pub key: String,
    /// The ARN as the analyst will search for it (the role ARN for role sessions).
    pub arn: Option<String>,
    #[serde(rename = "type")]
    pub kind: IdentityType,
    /// A role under `/aws-service-role/` (created and used by AWS itself).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service_linked: bool,
}

/// Why a record yields no principal. Each is counted in the run summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoPrincipal {
    /// No `userIdentity` at all.
    MissingIdentity,
    /// A `userIdentity` with nothing that identifies anyone.
    EmptyIdentity,
}

impl NoPrincipal {
    pub fn reason(self) -> &'static str {
        match self {
            NoPrincipal::MissingIdentity => "record has no userIdentity",
            NoPrincipal::EmptyIdentity => {
                "userIdentity names no one (no arn, principalId or invokedBy)"
            }
        }
    }
}

/// Turns an `sts` assumed-role ARN into the role's IAM ARN:
/// `arn:aws:sts::1:assumed-role/Name/session` → `arn:aws:iam::1:role/Name`.
/// The role's path is not in the session ARN, so the issuer ARN is preferred when present.
fn role_arn_from_session(arn: &str) -> Option<String> {
    let (head, resource) = arn.split_once(":assumed-role/")?;
    let role = resource.split('/').next().filter(|r| !r.is_empty())?;
    let (partition_part, account) = head.rsplit_once("::")?;
    let partition = partition_part.strip_prefix("arn:")?.split(':').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// Whether `arn` is an EC2 instance's role session (`...:assumed-role/Role/i-0abc...`): the
/// session name EC2 gives the credentials it serves from the instance metadata service.
pub fn is_instance_session(arn: &str) -> bool {
    // Called for every record: the session name is tested first, from the end, because most
    // are not `i-...`; only those are looked at for the `:assumed-role/` before them.
    let Some((before, session)) = arn.rsplit_once('/') else {
        return false;
    };
    let is_instance_id = session.strip_prefix("i-").is_some_and(|id| {
        (8..=17).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    // The session name is the part after the role name: nothing between them but the role.
    is_instance_id
        && before
            .split_once(":assumed-role/")
            .is_some_and(|(_, role)| !role.contains('/'))
}

/// Service-linked roles live under `/aws-service-role/` and only AWS services assume them.
/// Roles under `/aws-reserved/sso.amazonaws.com/` are IAM Identity Center permission sets:
/// people, and hunted like any role.
fn is_service_linked(arn: &str) -> bool {
    arn.contains(":role/aws-service-role/")
}

/// A principal as first identified from a record, borrowing from it where it can: the key of
/// most records is an ARN already in the record, so folding a record that lands on a row seen
/// before allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRef<'a> {
    pub key: Cow<'a, str>,
    pub arn: Option<Cow<'a, str>>,
    pub kind: IdentityType,
}

impl PrincipalRef<'_> {
    pub fn to_principal(&self) -> Principal {
        let arn = self.arn.as_deref().map(str::to_string);
        Principal {
            key: self.key.to_string(),
            service_linked: arn.as_deref().is_some_and(is_service_linked),
            arn,
            kind: self.kind,
        }
    }
}

impl Principal {
    /// Normalises the record's identity. `fallback_account` scopes keys that carry no account
    /// of their own (an AWS service acting in the account whose log this is).
    pub fn of(record: &Record<'_>, fallback_account: &str) -> Result<Principal, NoPrincipal> {
        Self::identify(record, fallback_account).map(|p| p.to_principal())
    }

    /// [`Principal::of`] without copying what the record already holds.
    pub fn identify<'r>(
        record: &'r Record<'_>,
        fallback_account: &'r str,
    ) -> Result<PrincipalRef<'r>, NoPrincipal> {
        let Some(id) = record.user_identity.0.as_ref() else {
            return Err(NoPrincipal::MissingIdentity);
        };
        let account = id
            .account_id
            .get()
            .or(record.recipient_account_id.get())
            .unwrap_or(fallback_account);
        let issuer = id
            .session_context
            .0
            .as_ref()
            .and_then(|c| c.session_issuer.0.as_ref());
        let issuer_arn = issuer.and_then(|i| i.arn.get());
        let arn = id.arn.get();
        let principal_id = id.principal_id.get();

        // Service events sometimes carry only `invokedBy` and no type.
        let kind = match id.kind.get() {
            Some(t) => IdentityType::from_cloudtrail(t),
            None if id.invoked_by.get().is_some() && arn.is_none() => IdentityType::AWSService,
            None => IdentityType::Unknown,
        };

        let make =
            |key: Cow<'r, str>, arn: Option<Cow<'r, str>>| Ok(PrincipalRef { key, arn, kind });
        let owned = |key: String| Cow::Owned(key);
        let borrowed = |key: &'r str| Cow::Borrowed(key);

        match kind {
            IdentityType::Root => {
                let root = arn
                    .map(borrowed)
                    .unwrap_or_else(|| owned(format!("arn:aws:iam::{account}:root")));
                make(root.clone(), Some(root))
            }
            IdentityType::IAMUser => match (arn, id.user_name.get(), principal_id) {
                (Some(a), _, _) => make(borrowed(a), Some(borrowed(a))),
                (None, Some(name), _) => {
                    let a = owned(format!("arn:aws:iam::{account}:user/{name}"));
                    make(a.clone(), Some(a))
                }
                (None, None, Some(pid)) => make(owned(format!("iam-user:{account}:{pid}")), None),
                _ => Err(NoPrincipal::EmptyIdentity),
            },
            IdentityType::AssumedRole => {
                let role = issuer_arn
                    .map(borrowed)
                    .or_else(|| arn.and_then(role_arn_from_session).map(owned));
                match (role, principal_id) {
                    (Some(r), _) => make(r.clone(), Some(r)),
                    // principalId is `ROLEID:session`; the role id alone is stable.
                    (None, Some(pid)) => {
                        let role_id = pid.split(':').next().unwrap_or(pid);
                        make(owned(format!("role-id:{account}:{role_id}")), None)
                    }
                    (None, None) => Err(NoPrincipal::EmptyIdentity),
                }
            }
            IdentityType::FederatedUser => {
                // GetFederationToken sessions belong to the IAM user (or root) that made them.
                match (issuer_arn, arn) {
                    (Some(i), _) => make(borrowed(i), Some(borrowed(i))),
                    (None, Some(a)) => make(borrowed(a), Some(borrowed(a))),
                    (None, None) => match principal_id {
                        Some(pid) => make(owned(format!("federated:{account}:{pid}")), None),
                        None => Err(NoPrincipal::EmptyIdentity),
                    },
                }
            }
            IdentityType::AWSService => match id.invoked_by.get().or(principal_id) {
                Some(service) => make(owned(format!("service:{service}")), None),
                None => Err(NoPrincipal::EmptyIdentity),
            },
            IdentityType::AWSAccount => {
                // Another account acting through a resource policy; its principalId is
                // `ACCOUNT` or `ROLEID:session`, so keep the part before the colon.
                let who = principal_id
                    .map(|p| p.split(':').next().unwrap_or(p))
                    .or(id.account_id.get());
                match who {
                    Some(w) => make(owned(format!("aws-account:{w}")), arn.map(borrowed)),
                    None => Err(NoPrincipal::EmptyIdentity),
                }
            }
            IdentityType::IdentityCenterUser => {
                let on_behalf = id.on_behalf_of.0.as_ref();
                let user = on_behalf.and_then(|o| o.user_id.get()).or(principal_id);
                let store = on_behalf
                    .and_then(|o| o.identity_store_arn.get())
                    .unwrap_or("identitystore");
                match user {
                    Some(u) => make(owned(format!("identity-center:{store}:{u}")), None),
                    None => Err(NoPrincipal::EmptyIdentity),
                }
            }
            IdentityType::WebIdentityUser | IdentityType::SAMLUser => {
                let provider = id.identity_provider.get().unwrap_or("unknown-provider");
                let user = id.user_name.get().or(principal_id);
                let tag = if kind == IdentityType::SAMLUser {
                    "saml"
                } else {
                    "web-identity"
                };
                match user {
                    Some(u) => make(owned(format!("{tag}:{provider}:{u}")), None),
                    None => Err(NoPrincipal::EmptyIdentity),
                }
            }
            IdentityType::Unknown => match (arn, principal_id) {
                (Some(a), _) => make(borrowed(a), Some(borrowed(a))),
                (None, Some(pid)) => make(owned(format!("unknown:{account}:{pid}")), None),
                (None, None) => Err(NoPrincipal::EmptyIdentity),
            },
        }
    }

    /// The short name shown in tables: the last ARN segment or the key.
    pub fn display_name(&self) -> &str {
        match &self.arn {
            Some(a) if a.ends_with(":root") => "root",
            Some(a) => a.rsplit(['/', ':']).next().unwrap_or(a),
            None => &self.key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_sessions_are_role_sessions_named_by_an_instance_id() {
        let yes = [
            "arn:aws:sts::111122223333:assumed-role/web/i-0abc1234",
            "arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0",
            "arn:aws-cn:sts::111122223333:assumed-role/a:b/i-deadbeef",
        ];
        let no = [
            "",
            "i-0abc1234",
            "/i-0abc1234",
            "arn:aws:iam::111122223333:user/i-0abc1234",
            "arn:aws:sts::111122223333:assumed-role/i-0abc1234",
            "arn:aws:sts::111122223333:assumed-role/web/i-0abc123",
            "arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef01",
            "arn:aws:sts::111122223333:assumed-role/web/i-0ABC1234",
            "arn:aws:sts::111122223333:assumed-role/web/i-0abc1234/x",
            "arn:aws:sts::111122223333:assumed-role/path/web/i-0abc1234",
            "arn:aws:sts::111122223333:assumed-role/web/session",
            "x:assumed-role/a:assumed-role/b/i-0abc1234",
        ];
        for arn in yes {
            assert!(is_instance_session(arn), "{arn}");
        }
        for arn in no {
            assert!(!is_instance_session(arn), "{arn}");
        }
    }

    fn principal(json: &str) -> Result<Principal, NoPrincipal> {
        let text = format!(
            r#"{{"eventTime":"2023-07-10T11:42:36Z","eventSource":"sts.amazonaws.com",
                 "eventName":"GetCallerIdentity","recipientAccountId":"111122223333",
                 "userIdentity":{json}}}"#
        );
        Principal::of(&Record::parse(&text).unwrap(), "999999999999")
    }

    #[test]
    fn role_sessions_share_one_principal() {
        let a = principal(
            r#"{"type":"AssumedRole","principalId":"AROAX:ci-run-1",
                "arn":"arn:aws:sts::111122223333:assumed-role/ci/ci-run-1",
                "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/build/ci"}}}"#,
        )
        .unwrap();
        let b = principal(
            r#"{"type":"AssumedRole","principalId":"AROAX:ci-run-2",
                "arn":"arn:aws:sts::111122223333:assumed-role/ci/ci-run-2",
                "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/build/ci"}}}"#,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key, "arn:aws:iam::111122223333:role/build/ci");
    }

    #[test]
    fn role_without_issuer_is_derived_from_the_session_arn() {
        let p = principal(
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/ci/run-9"}"#,
        )
        .unwrap();
        assert_eq!(p.key, "arn:aws:iam::111122223333:role/ci");
    }

    #[test]
    fn service_events_without_type_are_the_service() {
        let p =
            principal(r#"{"accountId":"111122223333","invokedBy":"ec2.amazonaws.com"}"#).unwrap();
        assert_eq!(p.kind, IdentityType::AWSService);
        assert_eq!(p.key, "service:ec2.amazonaws.com");
    }

    #[test]
    fn root_without_arn_is_scoped_to_its_account() {
        let p = principal(r#"{"type":"Root","accountId":"111122223333"}"#).unwrap();
        assert_eq!(p.key, "arn:aws:iam::111122223333:root");
        assert_eq!(p.display_name(), "root");
    }

    #[test]
    fn service_linked_roles_are_marked() {
        let p = principal(
            r#"{"type":"AssumedRole","sessionContext":{"sessionIssuer":
                {"arn":"arn:aws:iam::111122223333:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"}}}"#,
        )
        .unwrap();
        assert!(p.service_linked);
        let sso = principal(
            r#"{"type":"AssumedRole","sessionContext":{"sessionIssuer":
                {"arn":"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123"}}}"#,
        )
        .unwrap();
        assert!(!sso.service_linked, "Identity Center roles are people");
    }

    #[test]
    fn identity_center_users_are_keyed_by_user_id() {
        let p = principal(
            r#"{"type":"IdentityCenterUser","accountId":"111122223333",
                "onBehalfOf":{"userId":"u-1","identityStoreArn":"arn:aws:identitystore::1:identitystore/d-1"}}"#,
        )
        .unwrap();
        assert_eq!(
            p.key,
            "identity-center:arn:aws:identitystore::1:identitystore/d-1:u-1"
        );
    }

    #[test]
    fn nothing_to_name_is_a_counted_reason() {
        assert_eq!(
            principal(r#"{"type":"IAMUser"}"#),
            Err(NoPrincipal::EmptyIdentity)
        );
        assert_eq!(principal("null"), Err(NoPrincipal::MissingIdentity));
    }
}
