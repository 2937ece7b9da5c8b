//! Count and match rules over CloudTrail records: the rule file format, its loader, the
//! condition language and the engine that runs a rule pack over one hunt window.
//!
//! - [`model`]: what a rule is, and the TOML that describes it;
//! - [`load`]: a folder of rule files to a checked [`RuleSet`], every problem reported at once;
//! - [`condition`] and [`field`]: the tests a rule puts on single records;
//! - [`regex`]: the linear-time pattern matcher behind `regex` tests;
//! - [`eval`]: the [`RuleEngine`] that turns records into [`RuleHit`]s and [`TermCandidate`]s;
//! - [`evidence`]: the context kept with each hit; `peaks` finds where a count peaks;
//! - [`carry`]: what a rule keeps from one hunt window to the next.
//!
//! The shipped pack lives in the repository's `rules/` folder and is built in ([`SHIPPED`]).

pub mod carry;
pub mod condition;
pub mod eval;
pub mod evidence;
pub mod field;
pub mod load;
pub mod model;
mod peaks;
pub mod regex;

#[cfg(test)]
mod carry_tests;
#[cfg(test)]
mod condition_tests;
#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod pack_tests;
#[cfg(test)]
mod regex_tests;
#[cfg(test)]
mod tests;

pub use carry::SavedGroup;
pub use condition::{Condition, FieldTest, Group, Op, Scalar};
pub use eval::{EngineStats, RuleEngine, RuleHit, RuleOutput, RuleRun, TermCandidate};
pub use evidence::Evidence;
pub use field::{FieldPath, Key};
pub use load::{Problem, RuleSet, RulesError, SHIPPED};
pub use model::{default_score, Rule, RuleKind};
pub use peaks::Peak;
pub use regex::{Regex, RegexError};
