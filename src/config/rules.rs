//! `[rules]`: which detection rules run besides first-seen: the pack shipped with trailhound,
//! folders of your own, and ids turned off.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Run the rule pack shipped with trailhound (the repository's `rules/` folder).
    pub shipped: bool,
    /// Folders of your own rule files (`*.toml`, not recursive), e.g. from `rules import`.
    pub folders: Vec<PathBuf>,
    /// Rule ids not to run, shipped or yours.
    pub disable: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            shipped: true,
            folders: Vec::new(),
            disable: Vec::new(),
        }
    }
}

pub fn problems(rules: &RulesConfig) -> Vec<String> {
    let mut out = Vec::new();
    for id in &rules.disable {
        if id.trim().is_empty() {
            out.push("rules.disable: an empty rule id".to_string());
        }
    }
    for folder in &rules.folders {
        if folder.as_os_str().is_empty() {
            out.push("rules.folders: an empty path".to_string());
        }
    }
    out
}
