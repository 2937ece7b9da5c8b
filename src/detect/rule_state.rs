//! A rule's state in one account between hunt windows, as the store keeps it (one JSON
//! document per account and rule): when it was last evaluated, which groups fired then (what
//! the Elasticsearch rules kept as `LastAggResult`), and the groups it carries into the next
//! window (see `rules::carry`).
//!
//! Only scheduled hunts keep state: a replay of a fixed period evaluates every rule in every
//! window on its own, so it can neither be misled by nor overwrite the live state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::rules::{Rule, SavedGroup};
use crate::cloudtrail::Timestamp;

/// The id under which an account's store keeps the list of rules whose stored state carries
/// groups into the next window (as a JSON array of rule ids). A window reads the state of the
/// rules its records concern, of the scheduled rules, and of the rules on this list: a rule
/// with nothing to resume and nothing to match has nothing to read. Rule ids start with a
/// letter or digit, so this one cannot be a rule's.
pub const CARRYING: &str = "_carrying";

/// The most a rule's kept groups may take, as JSON. DynamoDB items are limited to 400 KB.
pub const MAX_GROUP_BYTES: usize = 256 * 1024;
/// The most fired groups remembered from a rule's last evaluation.
pub const MAX_LAST_KEYS: usize = 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    /// The end of the last hunt window whose records this state includes.
    pub through: Option<Timestamp>,
    /// The end of the window at which the rule was last evaluated.
    pub last_run: Option<Timestamp>,
    /// The groups (values joined by ", ") that fired at the last evaluation at which anything
    /// fired, each with the time of the last record of its finding.
    pub last_keys: BTreeMap<String, Timestamp>,
    /// What the rule carries into the next window.
    pub groups: Vec<SavedGroup>,
}

/// What a stored state means for the window about to be hunted.
pub enum Standing {
    /// Nothing stored (or nothing readable): the rule starts afresh.
    Fresh,
    /// The state of the windows before this one.
    Before(RuleState),
    /// The state already includes this window: a run stopped after committing the rule's
    /// state but before moving the watermark. The rule's findings and history for this window
    /// are stored already, so it is not run again.
    Done,
}

impl RuleState {
    pub fn parse(text: &str) -> Result<RuleState, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Where this state stands relative to the window ending at `end`.
    pub fn standing(self, end: Timestamp) -> Standing {
        match self.through {
            Some(through) if through >= end => Standing::Done,
            _ => Standing::Before(self),
        }
    }
}

/// Whether `rule` is to be evaluated at the end of the window ending at `end`: always without
/// a schedule, and with one once `every` has passed since its last evaluation.
pub fn due(rule: &Rule, state: Option<&RuleState>, end: Timestamp) -> bool {
    match (rule.every, state.and_then(|s| s.last_run)) {
        (Some(every), Some(last)) => end >= last.saturating_add(every),
        _ => true,
    }
}

/// The rule ids of a stored [`CARRYING`] list.
pub fn parse_carrying(text: &str) -> Result<BTreeSet<String>, serde_json::Error> {
    serde_json::from_str(text)
}

/// The stored form of a [`CARRYING`] list.
pub fn carrying_json(rules: &BTreeSet<String>) -> String {
    // A list of strings: serialising it cannot fail.
    serde_json::to_string(rules).unwrap_or_default()
}

/// The text a group is remembered by in `last_keys`.
pub fn key_text(values: &[String]) -> String {
    values.join(", ")
}
