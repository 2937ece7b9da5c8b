//! The tactic class of an action: the shipped table (`tactics.toml`) merged with the user's.

use std::collections::HashMap;

use crate::cloudtrail::Action;

static SHIPPED: &str = include_str!("tactics.toml");

/// Verbs whose calls change something; unlisted actions starting with one are "change".
const MUTATING: &[&str] = &[
    "Create",
    "Put",
    "Update",
    "Delete",
    "Attach",
    "Detach",
    "Add",
    "Remove",
    "Set",
    "Modify",
    "Enable",
    "Disable",
    "Associate",
    "Disassociate",
    "Authorize",
    "Revoke",
    "Start",
    "Stop",
    "Run",
    "Terminate",
    "Reboot",
    "Register",
    "Deregister",
    "Tag",
    "Untag",
    "Upload",
    "Import",
    "Reset",
    "Change",
    "Replace",
    "Restore",
    "Invoke",
    "Send",
    "Publish",
    "Cancel",
    "Accept",
    "Reject",
    "Copy",
    "Rotate",
    "Schedule",
];

pub struct Tactics {
    by_action: HashMap<String, String>,
}

impl Tactics {
    /// The shipped table with `overrides` (`service:Name` → tactic) on top.
    pub fn new<'a>(overrides: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        // The shipped table is part of the binary and covered by a test, so a parse failure
        // here is a build defect, not a user error.
        let shipped: HashMap<String, String> = toml::from_str(SHIPPED).unwrap_or_default();
        let mut by_action = HashMap::new();
        for (k, v) in shipped
            .into_iter()
            .chain(overrides.into_iter().map(|(k, v)| (k.clone(), v.clone())))
        {
            if let Some(a) = Action::parse_short(&k) {
                by_action.insert(a.short(), v);
            }
        }
        Tactics { by_action }
    }

    /// The class and whether it came from a table (`true`) or the verb heuristic.
    pub fn of(&self, action: &Action) -> (&str, bool) {
        if let Some(t) = self.by_action.get(&action.short()) {
            return (t, true);
        }
        let mutating = MUTATING.iter().any(|v| action.name.starts_with(v));
        (if mutating { "change" } else { "read" }, false)
    }

    pub fn len(&self) -> usize {
        self.by_action.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_action.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses_and_uses_known_tactics() {
        let shipped: HashMap<String, String> = toml::from_str(SHIPPED).unwrap();
        assert!(shipped.len() > 100);
        let known = crate::config::SeverityConfig::default().tactic;
        for (action, tactic) in &shipped {
            assert!(Action::parse_short(action).is_some(), "{action}");
            assert!(known.contains_key(tactic), "{action} = {tactic}");
        }
    }

    #[test]
    fn overrides_win_and_unlisted_actions_fall_back_to_the_verb() {
        let over = [("s3:PutObject".to_string(), "exfiltration".to_string())];
        let t = Tactics::new(over.iter().map(|(a, b)| (a, b)));
        assert_eq!(
            t.of(&Action::parse_short("s3:PutObject").unwrap()).0,
            "exfiltration"
        );
        assert_eq!(
            t.of(&Action::parse_short("iam:CreateAccessKey").unwrap()).0,
            "persistence"
        );
        assert_eq!(
            t.of(&Action::parse_short("foo:CreateThing").unwrap()),
            ("change", false)
        );
        assert_eq!(
            t.of(&Action::parse_short("foo:DescribeThing").unwrap()),
            ("read", false)
        );
    }
}
