//! The one TOML configuration file: what to ignore, what always alerts, how findings are
//! graded, and the hunt's time settings. Validated on load; every problem is reported at once,
//! each with its place. `trailhound.example.toml` at the repository root documents every field
//! and is loaded by a test, so it cannot drift from this code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cloudtrail::{Action, IdentityType, Span};

pub mod aws;
mod load;
pub mod rarity;
pub mod rules;
pub mod sinks;

pub use aws::{
    AccountSource, AthenaConfig, MusterConfig, PartitionMode, SourceConfig, SourceKind,
    StoreConfig, StoreKind, TrailConfig,
};
pub use rarity::RarityConfig;
pub use rules::RulesConfig;
pub use sinks::{HecConfig, SinksConfig, TokenSource};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

/// A glob over ARNs, actions or user agents: `*` matches any run of characters, `?` one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Glob(pattern.to_string())
    }

    pub fn matches(&self, text: &str) -> bool {
        glob_match(self.0.as_bytes(), text.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Iterative wildcard match with single backtrack point: linear in practice, no recursion, so a
// hostile pattern cannot blow the stack.
fn glob_match(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(serde::de::Error::custom(
                "an empty pattern matches nothing; remove it",
            ));
        }
        Ok(Glob(s))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HuntConfig {
    /// How long after its delivery minute an object is assumed to be in place.
    pub settle: Span,
    /// How far back an account's first hunt reaches.
    pub lookback: Span,
    /// Principals younger than this are learned but not alerted (except always-alert).
    pub min_principal_age: Span,
    /// A principal first seen in an account with at least this much history is a finding.
    pub account_min_history: Span,
    /// How long a learned behaviour stays known without being seen again.
    pub baseline_ttl: Span,
    /// A known behaviour's expiry is pushed out only when it was last written this long ago,
    /// so that steady state costs almost no writes.
    pub ttl_refresh: Span,
    /// Source networks are compared after folding IPv4 addresses to this prefix length.
    pub ipv4_prefix: u8,
    /// ... and IPv6 addresses to this one.
    pub ipv6_prefix: u8,
}

impl Default for HuntConfig {
    fn default() -> Self {
        HuntConfig {
            settle: Span::minutes(10),
            lookback: Span::days(1),
            min_principal_age: Span::days(7),
            account_min_history: Span::days(7),
            baseline_ttl: Span::days(90),
            ttl_refresh: Span::days(1),
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IgnoreConfig {
    /// Ignore principals of type AWSService (counted in the summary).
    pub aws_services: bool,
    /// Ignore service-linked roles, under /aws-service-role/ (counted in the summary).
    pub service_linked_roles: bool,
    /// Principal keys or ARNs to ignore, as globs.
    pub principals: Vec<Glob>,
    /// Actions to ignore, as globs over `service:Name`.
    pub actions: Vec<Glob>,
    /// Calls made with a matching user agent are ignored.
    pub user_agents: Vec<Glob>,
}

impl Default for IgnoreConfig {
    fn default() -> Self {
        IgnoreConfig {
            aws_services: true,
            service_linked_roles: true,
            principals: Vec::new(),
            actions: Vec::new(),
            user_agents: Vec::new(),
        }
    }
}

/// Sensitive actions that alert even for young principals.
pub const DEFAULT_ALWAYS_ALERT: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreateUser",
    "iam:AttachUserPolicy",
    "iam:PutUserPolicy",
    "iam:AttachRolePolicy",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:AddUserToGroup",
    "iam:DeactivateMFADevice",
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "ec2:DeleteFlowLogs",
    "guardduty:DeleteDetector",
    "organizations:LeaveOrganization",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "sts:GetFederationToken",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlwaysAlertConfig {
    /// Any activity of an account's root user.
    pub root: bool,
    /// Actions as `service:Name` globs.
    pub actions: Vec<Glob>,
}

impl Default for AlwaysAlertConfig {
    fn default() -> Self {
        AlwaysAlertConfig {
            root: true,
            actions: DEFAULT_ALWAYS_ALERT.iter().map(|a| Glob::new(a)).collect(),
        }
    }
}

/// Score thresholds of the levels; a score at or above a threshold has that level.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelThresholds {
    pub critical: i32,
    pub high: i32,
    pub medium: i32,
    pub low: i32,
}

impl Default for LevelThresholds {
    fn default() -> Self {
        LevelThresholds {
            critical: 80,
            high: 60,
            medium: 40,
            low: 20,
        }
    }
}

/// The weights of the severity factors. See the example config for what each means.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityConfig {
    /// Base score by identity type (`Root`, `IAMUser`, `AssumedRole`, ...).
    pub identity: BTreeMap<String, i32>,
    /// Added by the tactic class of the action (`persistence`, `defense-evasion`, ...).
    pub tactic: BTreeMap<String, i32>,
    /// The principal never used this service before.
    pub new_service: i32,
    /// Per further new action by the same principal in the window...
    pub per_new_action: i32,
    /// ... up to this much.
    pub new_actions_cap: i32,
    /// The calls were read-only.
    pub read_only: i32,
    /// The action is on the always-alert list (or the principal is root).
    pub always_alert: i32,
    /// The calls came from a network the principal has not used before.
    pub new_network: i32,
    /// The calls were made with a client (user-agent family) the principal has not used.
    pub new_client: i32,
    /// Both a new network and a new client at once: the signature of credentials used away
    /// from where they live (an instance role's keys on a laptop).
    pub new_network_and_client: i32,
    /// A console sign-in without MFA among the calls.
    pub console_login_without_mfa: i32,
    /// A denied call (kind new-denied-action); negative: one denial is usually noise.
    pub denied: i32,
    /// The principal had at least `denied_burst_min` new denied actions in the window.
    pub denied_burst: i32,
    pub denied_burst_min: u32,
    /// A new principal in an account with history (kind new-principal).
    pub new_principal: i32,
    /// The calls were made in a region the principal has not used before.
    pub new_region: i32,
    /// Several new things about where from and with what at once, on actions the principal
    /// may well know (kind new-context).
    pub new_context: i32,
    /// A known action the principal uses RARE-ly (see `[rarity]`) among the calls.
    pub rare_action: i32,
    /// A known action coming back after `rarity.dormant_after` without use.
    pub dormant_action: i32,
    /// Refused calls by the principal in the same window as a new context.
    pub denied_with_new_context: i32,
    /// A young principal did what no principal of the account did before.
    pub peer_unseen: i32,
    /// A workload's credentials (an EC2 instance's role session, a Lambda function's role)
    /// used from a network the role had not used.
    pub workload_credentials_elsewhere: i32,
    pub levels: LevelThresholds,
}

impl Default for SeverityConfig {
    fn default() -> Self {
        let identity = [
            ("Root", 50),
            ("IAMUser", 25),
            ("FederatedUser", 25),
            ("AssumedRole", 15),
            ("IdentityCenterUser", 20),
            ("SAMLUser", 20),
            ("WebIdentityUser", 20),
            ("AWSAccount", 30),
            ("AWSService", 0),
            ("Unknown", 25),
        ];
        let tactic = [
            ("initial-access", 25),
            ("execution", 15),
            ("persistence", 30),
            ("privilege-escalation", 30),
            ("defense-evasion", 35),
            ("credential-access", 30),
            ("discovery", 5),
            ("lateral-movement", 20),
            ("collection", 10),
            ("exfiltration", 25),
            ("impact", 25),
            ("change", 10),
            ("read", 0),
        ];
        SeverityConfig {
            identity: identity.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            tactic: tactic.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            new_service: 10,
            per_new_action: 2,
            new_actions_cap: 10,
            read_only: -10,
            always_alert: 20,
            new_network: 15,
            new_client: 15,
            new_network_and_client: 15,
            console_login_without_mfa: 20,
            denied: -5,
            denied_burst: 20,
            denied_burst_min: 5,
            new_principal: 20,
            new_region: 10,
            new_context: 10,
            rare_action: 10,
            dormant_action: 15,
            denied_with_new_context: 15,
            peer_unseen: 20,
            workload_credentials_elsewhere: 20,
            levels: LevelThresholds::default(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub hunt: HuntConfig,
    pub ignore: IgnoreConfig,
    pub always_alert: AlwaysAlertConfig,
    pub severity: SeverityConfig,
    /// Extra or changed tactic classes for actions: `"iam:CreateAccessKey" = "persistence"`.
    /// Merged over the shipped table.
    pub tactics: BTreeMap<String, String>,
    pub muster: MusterConfig,
    pub source: SourceConfig,
    pub trail: TrailConfig,
    pub athena: AthenaConfig,
    pub store: StoreConfig,
    pub sinks: SinksConfig,
    pub rules: RulesConfig,
    pub rarity: RarityConfig,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::parse(&text, &shown)
    }

    /// Parses and validates; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = load::read(text).map_err(|problems| match problems {
            load::ReadProblems::Syntax(message) => ConfigError::Parse {
                path: origin.to_string(),
                message,
            },
            load::ReadProblems::Schema(problems) => ConfigError::Invalid {
                path: origin.to_string(),
                problems,
            },
        })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: origin.to_string(),
                problems,
            })
        }
    }

    /// Every semantic problem, each naming its field.
    fn problems(&self) -> Vec<String> {
        let mut out = aws::problems(
            &self.muster,
            &self.source,
            &self.trail,
            &self.athena,
            &self.store,
        );
        out.extend(sinks::problems(&self.sinks));
        out.extend(rules::problems(&self.rules));
        let s = &self.severity;
        for key in s.identity.keys() {
            if IdentityType::parse(key).is_none() {
                let known: Vec<_> = IdentityType::ALL.iter().map(|t| t.name()).collect();
                out.push(format!(
                    "severity.identity: unknown identity type `{key}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        for (field, v) in s.identity.iter().chain(s.tactic.iter()) {
            if !(-100..=100).contains(v) {
                out.push(format!(
                    "severity: weight of `{field}` is {v}, must be within -100..=100"
                ));
            }
        }
        let l = &s.levels;
        if !(l.low < l.medium && l.medium < l.high && l.high < l.critical) {
            out.push(format!(
                "severity.levels: thresholds must rise low < medium < high < critical, got {} {} {} {}",
                l.low, l.medium, l.high, l.critical
            ));
        }
        if !(1..=100).contains(&l.critical) || l.low < 0 {
            out.push("severity.levels: thresholds must lie within 0..=100".to_string());
        }
        for (action, tactic) in &self.tactics {
            if Action::parse_short(action).is_none() {
                out.push(format!(
                    "tactics: `{action}` is not an action like \"iam:CreateAccessKey\""
                ));
            }
            if !s.tactic.contains_key(tactic) {
                let known: Vec<_> = s.tactic.keys().map(String::as_str).collect();
                out.push(format!(
                    "tactics.\"{action}\": unknown tactic `{tactic}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        out.extend(self.rarity.problems());
        let h = &self.hunt;
        if h.baseline_ttl < Span::days(1) {
            out.push(format!(
                "hunt.baseline_ttl is {}, must be at least 1d",
                h.baseline_ttl
            ));
        }
        if h.ttl_refresh >= h.baseline_ttl {
            out.push(format!(
                "hunt.ttl_refresh ({}) must be shorter than hunt.baseline_ttl ({})",
                h.ttl_refresh, h.baseline_ttl
            ));
        }
        if h.lookback == Span::ZERO {
            out.push("hunt.lookback must be longer than 0s".to_string());
        }
        if !(8..=32).contains(&h.ipv4_prefix) {
            out.push(format!(
                "hunt.ipv4_prefix is {}, must be within 8..=32",
                h.ipv4_prefix
            ));
        }
        if !(16..=128).contains(&h.ipv6_prefix) {
            out.push(format!(
                "hunt.ipv6_prefix is {}, must be within 16..=128",
                h.ipv6_prefix
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shells() {
        let g = Glob::new("arn:aws:iam::*:role/aws-service-role/*");
        assert!(g.matches("arn:aws:iam::111122223333:role/aws-service-role/x/y"));
        assert!(!g.matches("arn:aws:iam::111122223333:role/ci"));
        assert!(Glob::new("iam:?reate*").matches("iam:CreateUser"));
        assert!(Glob::new("*").matches(""));
        // Pathological pattern stays fast and correct.
        let hostile = Glob::new(&"*a".repeat(50));
        assert!(!hostile.matches(&"a".repeat(49)));
    }

    #[test]
    fn example_config_loads_and_matches_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/trailhound.example.toml");
        let c = Config::load(Path::new(path)).unwrap();
        let d = Config::default();
        assert_eq!(c.hunt.settle, d.hunt.settle);
        assert_eq!(c.severity.identity, d.severity.identity);
        assert_eq!(c.severity.tactic, d.severity.tactic);
        assert_eq!(c.always_alert.actions, d.always_alert.actions);
    }

    #[test]
    fn unknown_keys_are_errors_with_their_place() {
        let e = Config::parse("[hunt]\nsettel = \"10m\"\n", "t.toml").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("t.toml") && text.contains("settel") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let e = Config::parse("[hunt]\nsettle = 10\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = Config::parse("[hunt]\nsettle = \"ten minutes\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duration"), "{e}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = r#"
            [severity.identity]
            Robot = 10
            [severity.levels]
            low = 50
            medium = 40
            [tactics]
            "CreateUser" = "persistence"
            "iam:Foo" = "mischief"
        "#;
        let ConfigError::Invalid { problems, .. } = Config::parse(text, "t.toml").unwrap_err()
        else {
            panic!("expected semantic problems");
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }
}
