//! Detection: first-seen behaviour against the baseline, and the grading of what is found.

pub mod compose;
pub mod context;
pub mod first_seen;
pub mod rarity;
pub mod rule_findings;
pub mod rule_state;
pub mod rules;
pub mod rules_import;
pub mod severity;
pub mod tactics;

pub use first_seen::{DetectStats, Detection, Detector, Mode};
