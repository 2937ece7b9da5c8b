//! Reading rule files: a folder of `*.toml`, each with one or more `[[rule]]` tables.
//!
//! Every problem in every file is reported at once, each with its file, line, rule and key, so
//! a rule author fixes a folder in one pass instead of one error per run.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::model::{parse_rule, Rule};

/// One problem in the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file, as given (a path, or the name of an embedded file).
    pub file: String,
    /// 1-based line of the rule (or of the syntax error) when known.
    pub line: Option<usize>,
    /// The rule's id, or `rule N` (1-based, in its file) when it has no usable id.
    pub rule: Option<String>,
    /// The key, e.g. `window` or `when.all[1].equals`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ":")?;
        if let Some(rule) = &self.rule {
            write!(f, " {rule}:")?;
        }
        if let Some(field) = &self.field {
            write!(f, " `{field}`")?;
        }
        write!(f, " {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read the rules at {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no *.toml rule files", dir.display())]
    NoFiles { dir: PathBuf },
    #[error("{} problem(s) in the rules:\n  - {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Invalid(Vec<Problem>),
}

/// The checked rules of a folder (or of any set of rule texts), ids unique.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// The rule pack shipped with trailhound (the repository's `rules/` folder), by file name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("access.toml", include_str!("../../../rules/access.toml")),
    ("compute.toml", include_str!("../../../rules/compute.toml")),
    ("iam.toml", include_str!("../../../rules/iam.toml")),
    ("logging.toml", include_str!("../../../rules/logging.toml")),
    ("signin.toml", include_str!("../../../rules/signin.toml")),
    ("storage.toml", include_str!("../../../rules/storage.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<toml::Table>>,
}

/// The parser's message, or a general one where it has none (a lone carriage return).
fn syntax_message(e: &toml::de::Error) -> String {
    let message = e.message().trim();
    if message.is_empty() {
        "is not valid TOML here (check quotes, brackets and line breaks)".into()
    } else {
        message.to_string()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl RuleSet {
    /// Checks the rules of one file's text; `origin` names it in problems.
    pub fn parse(text: &str, origin: &str) -> Result<RuleSet, RulesError> {
        RuleSet::from_texts([(origin, text)])
    }

    /// Checks the rules of several files together (ids must be unique across all of them).
    pub fn from_texts<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RuleSet, RulesError> {
        let mut problems = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (origin, text) in files {
            let file: RuleFile = match toml::from_str(text) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(Problem {
                        file: origin.to_string(),
                        line: e.span().map(|s| line_of(text, s.start)),
                        rule: None,
                        field: None,
                        message: syntax_message(&e),
                    });
                    continue;
                }
            };
            if file.rule.is_empty() {
                problems.push(Problem {
                    file: origin.to_string(),
                    line: None,
                    rule: None,
                    field: None,
                    message: "holds no [[rule]] tables".into(),
                });
            }
            for (index, spanned) in file.rule.iter().enumerate() {
                let line = line_of(text, spanned.span().start);
                let table = spanned.get_ref();
                let name = match table.get("id").and_then(|v| v.as_str()) {
                    Some(id) => format!("rule `{id}`"),
                    None => format!("rule {}", index + 1),
                };
                let at = format!("{origin}:{line}");
                match parse_rule(table, &at) {
                    Ok(rule) => {
                        if let Some(first) = seen.get(&rule.id) {
                            problems.push(Problem {
                                file: origin.to_string(),
                                line: Some(line),
                                rule: Some(name),
                                field: Some("id".into()),
                                message: format!("is already used by the rule at {first}"),
                            });
                        } else {
                            seen.insert(rule.id.clone(), at);
                            rules.push(rule);
                        }
                    }
                    Err(issues) => {
                        problems.extend(issues.into_iter().map(|(field, message)| Problem {
                            file: origin.to_string(),
                            line: Some(line),
                            rule: Some(name.clone()),
                            field: Some(field),
                            message,
                        }))
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(RuleSet { rules })
        } else {
            Err(RulesError::Invalid(problems))
        }
    }

    /// Loads every `*.toml` file directly in `dir` (not below it; hidden files are skipped),
    /// in name order.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RulesError> {
        let texts = RuleSet::read_dir(dir)?;
        RuleSet::from_texts(texts.iter().map(|(p, t)| (p.as_str(), t.as_str())))
    }

    /// The shipped pack (when `shipped`) and every folder's files, checked together, so that
    /// an id used twice anywhere is a problem.
    pub fn load(shipped: bool, dirs: &[std::path::PathBuf]) -> Result<RuleSet, RulesError> {
        let mut texts: Vec<(String, String)> = Vec::new();
        if shipped {
            texts.extend(
                SHIPPED
                    .iter()
                    .map(|(name, text)| (format!("(shipped) rules/{name}"), text.to_string())),
            );
        }
        for dir in dirs {
            texts.extend(RuleSet::read_dir(dir)?);
        }
        if texts.is_empty() {
            return Ok(RuleSet::default());
        }
        RuleSet::from_texts(texts.iter().map(|(p, t)| (p.as_str(), t.as_str())))
    }

    /// Turns off the rules named in `ids`; returns the ids no rule has.
    pub fn disable(&mut self, ids: &[String]) -> Vec<String> {
        let mut unknown = Vec::new();
        for id in ids {
            match self.rules.iter_mut().find(|r| &r.id == id) {
                Some(rule) => rule.enabled = false,
                None => unknown.push(id.clone()),
            }
        }
        unknown
    }

    /// The `*.toml` files directly in `dir`, in name order, as (path, text).
    fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, RulesError> {
        let read = |path: &Path, e| RulesError::Read {
            path: path.to_path_buf(),
            source: e,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read(dir, e))? {
            let path = entry.map_err(|e| read(dir, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.extension().is_some_and(|e| e == "toml")
                && !name.starts_with('.')
                && path.is_file()
            {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(RulesError::NoFiles {
                dir: dir.to_path_buf(),
            });
        }
        paths.sort();
        let mut texts = Vec::new();
        for path in &paths {
            let text = std::fs::read_to_string(path).map_err(|e| read(path, e))?;
            texts.push((path.display().to_string(), text));
        }
        Ok(texts)
    }

    /// The shipped pack. It is checked by the tests, so this fails only on a broken build.
    pub fn shipped() -> Result<RuleSet, RulesError> {
        RuleSet::from_texts(SHIPPED.iter().copied())
    }

    /// Every rule, enabled or not, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that run.
    pub fn enabled(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[rule]]
id = "a"
title = "A"
severity = "low"
kind = "match"
[rule.when]
all = [{ field = "eventName", equals = "X" }]

[[rule]]
id = "b"
title = "B"
severity = "low"
kind = "match"
enabled = false
when = { field = "eventName", equals = "Y" }
"#;

    fn problems(files: &[(&str, &str)]) -> Vec<Problem> {
        match RuleSet::from_texts(files.iter().copied()) {
            Err(RulesError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn disabled_rules_load_but_do_not_run() {
        let set = RuleSet::parse(GOOD, "good.toml").unwrap();
        assert_eq!(set.rules().len(), 2);
        assert_eq!(
            set.enabled().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(set.get("b").unwrap().origin, "good.toml:10");
    }

    #[test]
    fn a_syntax_error_the_parser_gives_no_words_for_still_says_what_is_wrong() {
        // toml's message for a lone carriage return is empty (found by tests/fuzz_rules.rs).
        let p = problems(&[("cr.toml", "\r")]);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("not valid TOML"), "{}", p[0]);
    }

    #[test]
    fn duplicate_ids_across_files_are_errors() {
        let p = problems(&[("one.toml", GOOD), ("two.toml", GOOD)]);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].to_string(),
            "two.toml:2: rule `a`: `id` is already used by the rule at one.toml:2"
        );
    }

    #[test]
    fn all_problems_of_all_files_come_back_with_places() {
        let bad = r#"
[[rule]]
id = "x"
title = "X"
severity = "medium"
kind = "threshold"
window = "5 minutes"
min_count = 0
[rule.when]

[[rule]]
title = "no id"
severity = "low"
kind = "match"
when = { field = "a", equals = "b", colour = "red" }
"#;
        let p = problems(&[
            ("bad.toml", bad),
            ("syntax.toml", "[[rule]\n"),
            ("empty.toml", "# nothing\n"),
            ("typo.toml", "[[rules]]\nid = \"a\"\n"),
        ]);
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 8, "{shown:#?}");
        assert!(
            shown[0].starts_with("bad.toml:2: rule `x`: `window` must be a duration"),
            "{shown:#?}"
        );
        assert!(shown[1].starts_with("bad.toml:2: rule `x`: `min_count` must be at least 1"));
        assert!(shown[2].starts_with("bad.toml:2: rule `x`: `when` is empty"));
        assert!(shown[3].starts_with("bad.toml:11: rule 2: `id` is required"));
        assert!(shown[4].starts_with("bad.toml:11: rule 2: `when.colour` unknown key"));
        assert!(shown[5].starts_with("syntax.toml:1:"));
        assert_eq!(shown[6], "empty.toml: holds no [[rule]] tables");
        assert!(shown[7].contains("unknown field `rules`"), "{}", shown[7]);
    }

    #[test]
    fn a_folder_loads_its_toml_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("README.md"), "not rules").unwrap();
        std::fs::write(dir.path().join(".hidden.toml"), "junk").unwrap();
        assert_eq!(RuleSet::load_dir(dir.path()).unwrap().len(), 2);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            RuleSet::load_dir(empty.path()),
            Err(RulesError::NoFiles { .. })
        ));
        assert!(matches!(
            RuleSet::load_dir(&dir.path().join("missing")),
            Err(RulesError::Read { .. })
        ));
    }
}
