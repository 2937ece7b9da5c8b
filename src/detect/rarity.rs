//! How usual an action is for the principal doing it: FREQUENT, INFREQUENT, RARE or UNSEEN.
//!
//! The baseline counts the days each (principal, action) pair was written on: its first
//! sighting and each refresh, at most one a day (`PairState::days`). An action's share is those
//! days over the days the principal has been known (at most the baseline's TTL, since older
//! days are forgotten). A principal known for less than `min_history` has too few days for a
//! share to mean much, so it is judged against its peers: roles of the same name across the
//! organisation's accounts (one stack deploys the same role everywhere), else the account's
//! principals. Both are pairs written whenever a peer uses the action; the role-name pairs live
//! under the pseudo-account [`ORGANIZATION`], so every account's hunt sees them.

use crate::baseline::PairState;
use crate::cloudtrail::{Span, Timestamp};
use crate::config::RarityConfig;

/// The principal name of an account's peer pairs: actions any of its principals used.
pub const ACCOUNT_PEERS: &str = "peers:account";

/// The pseudo-account whose partition of the store holds the organisation-wide peer pairs.
/// AWS never issues it.
pub const ORGANIZATION: &str = "000000000000";

/// The principal name of the peer pairs of roles named like `role_key`'s role, in any
/// account: `peers:role/Name` for `arn:aws:iam::1:role/path/Name`. `None` for non-roles.
pub fn role_peers(role_key: &str) -> Option<String> {
    let (_, resource) = role_key.split_once(":role/")?;
    let name = resource.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some(format!("peers:role/{name}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Unseen,
    Rare,
    Infrequent,
    Frequent,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Frequent => "FREQUENT",
            Tier::Infrequent => "INFREQUENT",
            Tier::Rare => "RARE",
            Tier::Unseen => "UNSEEN",
        }
    }
}

/// Whose history an action was judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    Principal,
    /// The principal is too young; the account's principals together.
    AccountPeers,
    /// The principal is too young; roles of the same name across the organisation.
    RoleNamePeers,
}

/// The tier of one action, with what it rests on, for a finding's reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub tier: Tier,
    pub basis: Basis,
    /// Days the action was used on, and the days it could have been.
    pub days_used: u64,
    pub days_known: u64,
    /// Days since the action was last used, when that is at least `dormant_after`.
    pub dormant_days: Option<i64>,
}

impl Judgement {
    /// `RARE for this principal: used on 2 of 60 days`.
    pub fn describe(&self, action: &str) -> String {
        let whose = match self.basis {
            Basis::Principal => "this principal",
            Basis::AccountPeers => "the account's principals (this one is too new to judge)",
            Basis::RoleNamePeers => {
                "roles of this name across the organisation (this one is too new to judge)"
            }
        };
        match self.tier {
            Tier::Unseen => format!("{action} is UNSEEN for {whose}"),
            tier => format!(
                "{action} is {} for {whose}: used on {} of {} days",
                tier.name(),
                self.days_used,
                self.days_known
            ),
        }
    }
}

pub struct Rarity<'c> {
    config: &'c RarityConfig,
    /// Days older than the baseline's TTL are forgotten, so shares are over at most this.
    ttl: Span,
}

fn whole_days(span: Span) -> u64 {
    let day = Span::days(1).as_seconds();
    (span.as_seconds().max(0) as u64)
        .div_ceil(day as u64)
        .max(1)
}

impl<'c> Rarity<'c> {
    pub fn new(config: &'c RarityConfig, ttl: Span) -> Self {
        Rarity { config, ttl }
    }

    /// Whether a principal first seen at `since` is judged by its peers at `at`.
    pub fn too_young(&self, since: Timestamp, at: Timestamp) -> bool {
        at.since(since) < self.config.min_history
    }

    /// The tier of an action whose pair is `pair` (of the principal, or of its peers as
    /// `basis` says), for a history that began at `since`, used again at `at`.
    pub fn judge(
        &self,
        pair: Option<&PairState>,
        since: Timestamp,
        at: Timestamp,
        basis: Basis,
    ) -> Judgement {
        let known = at.since(since).min(self.ttl);
        let days_known = whole_days(known);
        let Some(pair) = pair else {
            return Judgement {
                tier: Tier::Unseen,
                basis,
                days_used: 0,
                days_known,
                dormant_days: None,
            };
        };
        let days_used = pair.days.max(1).min(days_known);
        let share = days_used as f64 / days_known as f64;
        let tier = if share >= self.config.frequent {
            Tier::Frequent
        } else if share >= self.config.infrequent {
            Tier::Infrequent
        } else {
            Tier::Rare
        };
        let silent = at.since(pair.last_seen);
        let dormant_days = (silent >= self.config.dormant_after)
            .then(|| silent.as_seconds() / Span::days(1).as_seconds());
        Judgement {
            tier,
            basis,
            days_used,
            days_known,
            dormant_days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> Timestamp {
        Timestamp::from_unix(1_700_000_000 + n * 86_400)
    }

    fn pair(days: u64, last: i64) -> PairState {
        PairState {
            first_seen: day(0),
            last_seen: day(last),
            count: days * 10,
            days,
            expires: day(last + 90),
        }
    }

    #[test]
    fn tiers_follow_the_share_of_days_used() {
        let config = RarityConfig::default();
        let r = Rarity::new(&config, Span::days(90));
        let at = day(60);
        let tier = |p: Option<PairState>| r.judge(p.as_ref(), day(0), at, Basis::Principal).tier;
        assert_eq!(tier(None), Tier::Unseen);
        assert_eq!(tier(Some(pair(30, 59))), Tier::Frequent);
        assert_eq!(
            tier(Some(pair(15, 59))),
            Tier::Frequent,
            "15 of 60 is a quarter"
        );
        assert_eq!(tier(Some(pair(5, 59))), Tier::Infrequent);
        assert_eq!(tier(Some(pair(2, 59))), Tier::Rare);
        let j = r.judge(Some(&pair(2, 59)), day(0), at, Basis::Principal);
        assert_eq!(
            j.describe("s3:ListBuckets"),
            "s3:ListBuckets is RARE for this principal: used on 2 of 60 days"
        );
    }

    #[test]
    fn shares_are_over_the_remembered_days_and_dormancy_is_measured() {
        let config = RarityConfig::default();
        let r = Rarity::new(&config, Span::days(90));
        // Known for 400 days, but only 90 are remembered: 30 of 90 is frequent.
        let j = r.judge(Some(&pair(30, 399)), day(0), day(400), Basis::Principal);
        assert_eq!((j.tier, j.days_known), (Tier::Frequent, 90));
        assert_eq!(j.dormant_days, None);
        // Last used 45 days ago.
        let j = r.judge(Some(&pair(10, 355)), day(0), day(400), Basis::Principal);
        assert_eq!(j.dormant_days, Some(45));
        assert!(r.too_young(day(395), day(400)));
        assert!(!r.too_young(day(0), day(400)));
    }
}
