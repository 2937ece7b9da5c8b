//! `[rarity]`: how usual an action is for its principal, from how many of the days the
//! principal has been known it used the action (see `detect::rarity`).

use serde::Deserialize;

use crate::cloudtrail::Span;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RarityConfig {
    /// An action used on at least this share of the days its principal is known is FREQUENT.
    pub frequent: f64,
    /// ... at least this share INFREQUENT; below, RARE. Never used: UNSEEN.
    pub infrequent: f64,
    /// Principals known for less than this are judged against the account's other principals
    /// (their peers) instead of their own few days.
    pub min_history: Span,
    /// A known action not used for this long that comes back is a factor (dormant).
    pub dormant_after: Span,
}

impl Default for RarityConfig {
    fn default() -> Self {
        RarityConfig {
            frequent: 0.25,
            infrequent: 0.05,
            min_history: Span::days(7),
            dormant_after: Span::days(30),
        }
    }
}

impl RarityConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let share = |v: f64| (0.0..=1.0).contains(&v);
        if !share(self.frequent) || !share(self.infrequent) {
            out.push(format!(
                "rarity.frequent ({}) and rarity.infrequent ({}) must be shares within 0..=1",
                self.frequent, self.infrequent
            ));
        } else if self.infrequent > self.frequent {
            out.push(format!(
                "rarity.infrequent ({}) must not be above rarity.frequent ({})",
                self.infrequent, self.frequent
            ));
        }
        if self.dormant_after < Span::days(1) {
            out.push(format!(
                "rarity.dormant_after is {}, must be at least 1d (the baseline's refresh step)",
                self.dormant_after
            ));
        }
        out
    }
}
