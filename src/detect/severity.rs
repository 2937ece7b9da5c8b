//! Grading: a score from 0 to 100 and a level, as the sum of named, weighted factors. Every
//! factor that applied is kept as a reason, so an analyst can see why a finding ranks where
//! it does and a team can tune the weights in the config file.

use crate::alert::{FindingKind, Level, Reason, Severity};
use crate::cloudtrail::{Action, IdentityType};
use crate::config::{Config, SeverityConfig};

use super::rarity::{Basis, Judgement, Tier};
use super::tactics::Tactics;

/// The facts about a finding that severity depends on.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub kind: Option<FindingKind>,
    pub identity: Option<IdentityType>,
    /// The action graded (for a new principal: its most severe action).
    pub action: Option<Action>,
    /// The principal never used this service before.
    pub new_service: bool,
    /// New actions of the same principal in the window, this one included.
    pub new_actions: u32,
    /// New denied actions of the same principal in the window, this one included.
    pub new_denied: u32,
    pub read_only: bool,
    /// Why the finding is always alerted, if it is.
    pub always_alert: Option<String>,
    /// A network the principal had not used (`203.0.113.0/24`).
    pub new_network: Option<String>,
    /// A client family the principal had not used (`aws-cli`).
    pub new_client: Option<String>,
    /// Console sign-ins without MFA among the calls.
    pub logins_without_mfa: u64,
    /// A region the principal had not used (`eu-north-1`).
    pub new_region: Option<String>,
    /// How usual the action is for the principal (one-row findings).
    pub rarity: Option<Judgement>,
    /// Known actions among the calls that the principal uses RARE-ly, described.
    pub rare_actions: Vec<String>,
    /// Known actions among the calls that came back after a long silence, described.
    pub dormant_actions: Vec<String>,
    /// Refused calls by the principal in the window.
    pub denied_calls: u64,
    /// A workload's credentials used away from it (see [`Workload`]).
    pub workload_elsewhere: Option<Workload>,
}

/// A principal whose credentials live inside AWS compute, so that a call from elsewhere means
/// they were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Calls with an EC2 instance's role session (`…/i-0abc…`) from a network the role had
    /// not used: credentials from the instance metadata service used off the instance.
    Ec2Instance,
    /// A role whose calls come from the Lambda runtime (`exec-env/AWS_Lambda…`) called from a
    /// new network with a new client: a function's credentials used outside it.
    LambdaFunction,
}

impl Workload {
    fn describe(self) -> &'static str {
        match self {
            Workload::Ec2Instance => {
                "an EC2 instance's role session called from a network the role had not used: \
                 credentials from the instance metadata service used off the instance"
            }
            Workload::LambdaFunction => {
                "a Lambda function's role called from a new network with a new client: the \
                 function's credentials used outside the Lambda runtime"
            }
        }
    }
}

pub struct Grader {
    weights: SeverityConfig,
    tactics: Tactics,
}

impl Grader {
    pub fn new(config: &Config) -> Self {
        Grader {
            weights: config.severity.clone(),
            tactics: Tactics::new(&config.tactics),
        }
    }

    pub fn tactic_of(&self, action: &Action) -> &str {
        self.tactics.of(action).0
    }

    /// The weight of an action's tactic class.
    pub fn tactic_weight(&self, action: &Action) -> i32 {
        let tactic = self.tactics.of(action).0;
        self.weights.tactic.get(tactic).copied().unwrap_or(0)
    }

    pub fn level_of(&self, score: i32) -> Level {
        let l = &self.weights.levels;
        match score {
            s if s >= l.critical => Level::Critical,
            s if s >= l.high => Level::High,
            s if s >= l.medium => Level::Medium,
            s if s >= l.low => Level::Low,
            _ => Level::Informational,
        }
    }

    pub fn grade(&self, f: &Facts) -> Severity {
        let w = &self.weights;
        let mut reasons: Vec<Reason> = Vec::new();
        // Reasons given whatever their weight (the rarity tier).
        let mut told: Vec<Reason> = Vec::new();
        let mut add = |factor: &str, weight: i32, detail: String| {
            if weight != 0 {
                reasons.push(Reason {
                    factor: factor.to_string(),
                    weight,
                    detail,
                });
            }
        };
        if let Some(t) = f.identity {
            let base = w.identity.get(t.name()).copied().unwrap_or(0);
            add("identity-type", base, format!("{t} principal"));
        }
        let kind = f.kind.unwrap_or(FindingKind::NewAction);
        if kind == FindingKind::NewPrincipal {
            add(
                "new-principal",
                w.new_principal,
                "first activity of this principal in an account with history".into(),
            );
        }
        if let Some(a) = &f.action {
            let (tactic, listed) = self.tactics.of(a);
            let mut weight = w.tactic.get(tactic).copied().unwrap_or(0);
            // A refused call did not achieve its tactic; it counts for half. A burst of them
            // is graded by what the prober was after.
            if kind == FindingKind::NewDeniedAction {
                weight /= 2;
            }
            let source = if listed { "tactic table" } else { "verb" };
            add(
                &format!("tactic:{tactic}"),
                weight,
                format!("{a} is {tactic} ({source})"),
            );
        }
        if f.new_service {
            if let Some(a) = &f.action {
                add(
                    "new-service",
                    w.new_service,
                    format!("first use of {} by this principal", a.service()),
                );
            }
        }
        if f.new_actions > 1 {
            let extra = (f.new_actions as i32 - 1)
                .saturating_mul(w.per_new_action)
                .min(w.new_actions_cap);
            add(
                "new-actions-in-window",
                extra,
                format!(
                    "{} new actions by this principal in the window",
                    f.new_actions
                ),
            );
        }
        if f.read_only && !matches!(kind, FindingKind::NewPrincipal | FindingKind::DeniedBurst) {
            add("read-only", w.read_only, "the calls were read-only".into());
        }
        if let Some(why) = &f.always_alert {
            add("always-alert", w.always_alert, why.clone());
        }
        if let Some(net) = &f.new_network {
            add(
                "new-network",
                w.new_network,
                format!("called from {net}, a network this principal had not used"),
            );
        }
        if let Some(client) = &f.new_client {
            add(
                "new-client",
                w.new_client,
                format!("called with {client}, a client this principal had not used"),
            );
        }
        if f.new_network.is_some() && f.new_client.is_some() {
            add(
                "new-network-and-client",
                w.new_network_and_client,
                "a new network and a new client together: credentials used away from their usual place".into(),
            );
        }
        if let Some(region) = &f.new_region {
            add(
                "new-region",
                w.new_region,
                format!("called in {region}, a region this principal had not used"),
            );
        }
        if kind == FindingKind::NewContext {
            add(
                "new-context",
                w.new_context,
                "several new things at once about where from and with what".into(),
            );
        }
        if let (Some(j), Some(a)) = (&f.rarity, &f.action) {
            let weight = match (j.tier, j.basis) {
                (Tier::Unseen, Basis::AccountPeers | Basis::RoleNamePeers) => w.peer_unseen,
                (Tier::Rare, _) => w.rare_action,
                _ => 0,
            };
            // The tier is always told, even when it adds nothing.
            told.push(Reason {
                factor: format!("rarity:{}", j.tier.name()),
                weight,
                detail: j.describe(&a.short()),
            });
            if let Some(days) = j.dormant_days {
                told.push(Reason {
                    factor: "dormant-action".into(),
                    weight: w.dormant_action,
                    detail: format!("{} came back after {days} days without use", a.short()),
                });
            }
        }
        if !f.rare_actions.is_empty() {
            add("rarity:RARE", w.rare_action, f.rare_actions.join("; "));
        }
        if !f.dormant_actions.is_empty() {
            add(
                "dormant-action",
                w.dormant_action,
                f.dormant_actions.join("; "),
            );
        }
        if let Some(workload) = f.workload_elsewhere {
            add(
                "workload-credentials-elsewhere",
                w.workload_credentials_elsewhere,
                workload.describe().into(),
            );
        }
        if kind == FindingKind::NewContext && f.denied_calls > 0 {
            add(
                "denied-with-new-context",
                w.denied_with_new_context,
                format!(
                    "{} refused calls by this principal in the window",
                    f.denied_calls
                ),
            );
        }
        if f.logins_without_mfa > 0 {
            add(
                "console-login-without-mfa",
                w.console_login_without_mfa,
                format!("{} console sign-in(s) without MFA", f.logins_without_mfa),
            );
        }
        if kind == FindingKind::NewDeniedAction {
            add("denied", w.denied, "the call was refused".into());
        }
        let refused = matches!(
            kind,
            FindingKind::NewDeniedAction | FindingKind::DeniedBurst
        );
        if refused && f.new_denied >= w.denied_burst_min {
            add(
                "denied-burst",
                w.denied_burst,
                format!(
                    "{} new denied actions by this principal in the window",
                    f.new_denied
                ),
            );
        }
        reasons.extend(told);
        let score = reasons.iter().map(|r| r.weight).sum::<i32>().clamp(0, 100);
        Severity {
            score: score as u8,
            level: self.level_of(score),
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grader() -> Grader {
        Grader::new(&Config::default())
    }

    #[test]
    fn every_factor_is_a_named_reason_and_the_score_is_their_sum() {
        let s = grader().grade(&Facts {
            kind: Some(FindingKind::NewAction),
            identity: Some(IdentityType::AssumedRole),
            action: Action::parse_short("sts:GetCallerIdentity"),
            new_service: true,
            new_actions: 3,
            read_only: true,
            new_network: Some("192.168.10.0/24".into()),
            new_client: Some("aws-cli".into()),
            ..Facts::default()
        });
        let sum: i32 = s.reasons.iter().map(|r| r.weight).sum();
        assert_eq!(i32::from(s.score), sum);
        let names: Vec<_> = s.reasons.iter().map(|r| r.factor.as_str()).collect();
        assert_eq!(
            names,
            [
                "identity-type",
                "tactic:discovery",
                "new-service",
                "new-actions-in-window",
                "read-only",
                "new-network",
                "new-client",
                "new-network-and-client"
            ]
        );
    }

    #[test]
    fn stopping_cloudtrail_outranks_reading_a_bucket_list() {
        let g = grader();
        let stop = g.grade(&Facts {
            identity: Some(IdentityType::IAMUser),
            action: Action::parse_short("cloudtrail:StopLogging"),
            always_alert: Some("sensitive action".into()),
            ..Facts::default()
        });
        let list = g.grade(&Facts {
            identity: Some(IdentityType::IAMUser),
            action: Action::parse_short("s3:ListBuckets"),
            read_only: true,
            ..Facts::default()
        });
        assert!(stop.score > list.score);
        assert!(stop.level >= Level::High, "{stop:?}");
        assert!(list.level <= Level::Low, "{list:?}");
    }

    #[test]
    fn a_burst_of_denials_outranks_one() {
        let g = grader();
        let one = Facts {
            kind: Some(FindingKind::NewDeniedAction),
            identity: Some(IdentityType::AssumedRole),
            action: Action::parse_short("secretsmanager:ListSecrets"),
            new_denied: 1,
            ..Facts::default()
        };
        let burst = Facts {
            new_denied: 12,
            ..one.clone()
        };
        assert!(g.grade(&burst).score > g.grade(&one).score);
    }

    #[test]
    fn scores_are_clamped_to_the_scale() {
        let s = grader().grade(&Facts {
            identity: Some(IdentityType::Root),
            action: Action::parse_short("cloudtrail:DeleteTrail"),
            always_alert: Some("root".into()),
            new_network: Some("x".into()),
            new_client: Some("y".into()),
            new_service: true,
            new_actions: 20,
            ..Facts::default()
        });
        assert_eq!(s.score, 100);
        assert_eq!(s.level, Level::Critical);
    }
}
