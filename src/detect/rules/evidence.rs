//! What an analyst needs to judge a rule hit, gathered while records stream past in any order.
//!
//! Every list is distinct, sorted and capped by keeping the smallest values, so the result is the
//! same whatever order the records came in.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloudtrail::{Principal, Timestamp};

/// Most sample eventIDs kept per hit.
pub const MAX_SAMPLES: usize = 16;
/// Most values kept per context list (IPs, user agents, regions, error codes).
pub const MAX_CONTEXT: usize = 16;

/// The context of a hit or a new-terms candidate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The smallest eventIDs of the group's records, sorted.
    pub sample_event_ids: Vec<String>,
    pub source_ips: Vec<String>,
    pub user_agents: Vec<String>,
    pub regions: Vec<String>,
    pub error_codes: Vec<String>,
    /// The principal of the group's earliest record (by eventTime, then eventID); `None` when
    /// that record names no one.
    pub principal: Option<Principal>,
}

/// The facts of one record that evidence is made of, read once per record.
pub struct Facts<'v> {
    pub time: Timestamp,
    pub event_id: Option<&'v str>,
    pub source_ip: Option<&'v str>,
    pub user_agent: Option<&'v str>,
    pub region: Option<&'v str>,
    pub error_code: Option<&'v str>,
    pub principal: Option<Principal>,
}

fn text<'v>(record: &'v Value, key: &str) -> Option<&'v str> {
    record
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl<'v> Facts<'v> {
    pub fn of(record: &'v Value, time: Timestamp, principal: Option<Principal>) -> Self {
        Facts {
            time,
            event_id: text(record, "eventID"),
            source_ip: text(record, "sourceIPAddress"),
            user_agent: text(record, "userAgent"),
            region: text(record, "awsRegion"),
            error_code: text(record, "errorCode"),
            principal,
        }
    }
}

/// Keeps the `cap` smallest distinct values.
pub fn keep_smallest(set: &mut BTreeSet<String>, value: &str, cap: usize) {
    if set.len() >= cap && set.last().is_some_and(|last| last.as_str() <= value) {
        return;
    }
    if set.contains(value) {
        return;
    }
    set.insert(value.to_string());
    if set.len() > cap {
        set.pop_last();
    }
}

/// Evidence under construction; kept in a rule's state between windows (see `carry`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceBuilder {
    ids: BTreeSet<String>,
    ips: BTreeSet<String>,
    agents: BTreeSet<String>,
    regions: BTreeSet<String>,
    errors: BTreeSet<String>,
    first: Option<(Timestamp, String)>,
    principal: Option<Principal>,
}

impl EvidenceBuilder {
    pub fn add(&mut self, facts: &Facts<'_>) {
        let pairs = [
            (&mut self.ids, facts.event_id, MAX_SAMPLES),
            (&mut self.ips, facts.source_ip, MAX_CONTEXT),
            (&mut self.agents, facts.user_agent, MAX_CONTEXT),
            (&mut self.regions, facts.region, MAX_CONTEXT),
            (&mut self.errors, facts.error_code, MAX_CONTEXT),
        ];
        for (set, value, cap) in pairs {
            if let Some(v) = value {
                keep_smallest(set, v, cap);
            }
        }
        let id = facts.event_id.unwrap_or("");
        let earlier = match &self.first {
            None => true,
            Some((t, first_id)) => (facts.time, id) < (*t, first_id.as_str()),
        };
        if earlier {
            self.first = Some((facts.time, id.to_string()));
            self.principal = facts.principal.clone();
        }
    }

    pub fn build(&self) -> Evidence {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect();
        Evidence {
            sample_event_ids: list(&self.ids),
            source_ips: list(&self.ips),
            user_agents: list(&self.agents),
            regions: list(&self.regions),
            error_codes: list(&self.errors),
            principal: self.principal.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_sets_keep_the_smallest_whatever_the_order() {
        let values: Vec<String> = (0..40).map(|i| format!("v{i:02}")).collect();
        let mut forward = BTreeSet::new();
        let mut backward = BTreeSet::new();
        for v in &values {
            keep_smallest(&mut forward, v, 16);
        }
        for v in values.iter().rev() {
            keep_smallest(&mut backward, v, 16);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), 16);
        assert_eq!(forward.last().map(String::as_str), Some("v15"));
    }
}
