//! What a rule is, once its TOML has been checked: the rule file format lives here.
//!
//! ```toml
//! [[rule]]
//! id = "console-signin-failures"   # [a-z0-9][a-z0-9._-]{0,63}, unique across the folder
//! title = "..."                    # required
//! text = "..."                     # optional: why it matters, what to check
//! severity = "medium"              # critical | high | medium | low | informational
//! score = 55                       # optional 0..=100; default 90/70/50/30/10 by severity
//! tactic = "credential-access"     # optional, free text
//! enabled = true                   # default true; a disabled rule is loaded, not run
//! kind = "threshold"               # match | threshold | cardinality | new_terms
//! group_by = ["principal"]         # default ["principal"]; [] makes the hunt one group
//! window = "5m"                    # threshold, cardinality
//! min_count = 4                    # match (default 1), threshold (required), new_terms (default 1)
//! field = "sourceIPAddress"        # cardinality
//! min_distinct = 3                 # cardinality, at least 2
//! terms = ["eventName"]            # new_terms, 1 to 4 keys
//! history = "14d"                  # new_terms
//! every = "6h"                     # optional: evaluate at most this often (see below)
//! [rule.when]                      # see `condition` for the condition language
//! all = [{ field = "eventName", equals = "ConsoleLogin" }]
//! ```
//!
//! `every` is the rule's schedule. Without it the rule is evaluated at the end of every hunt
//! window. With it, the records it matches are kept in the rule's state in the store, window
//! after window, and it is evaluated once `every` has passed since its last evaluation, over
//! everything kept since then: nothing between two evaluations is skipped.
//!
//! A key a rule's kind does not use is an error rather than ignored, so that a `window` on a
//! `match` rule cannot silently mean nothing.

use super::condition::{self, Condition};
use super::field::Key;
use crate::alert::Level;
use crate::cloudtrail::Span;

/// The score of a rule that gives none: 90, 70, 50, 30, 10 from critical down.
pub fn default_score(level: Level) -> u8 {
    match level {
        Level::Critical => 90,
        Level::High => 70,
        Level::Medium => 50,
        Level::Low => 30,
        Level::Informational => 10,
    }
}

/// What makes a rule fire, per group.
#[derive(Clone, Debug)]
pub enum RuleKind {
    /// At least `min_count` records match `when` in the hunt window.
    Match { min_count: u64 },
    /// At least `min_count` matching records fall in one interval `[t, t + window)`.
    Threshold { window: Span, min_count: u64 },
    /// At least `min_distinct` values of `field` among the matching records of one interval
    /// `[t, t + window)`.
    Cardinality {
        window: Span,
        field: Key,
        min_distinct: u64,
    },
    /// A value (or tuple) of `terms` not seen for the group in `history`; the engine reports
    /// candidates with at least `min_count` records and the caller checks the history.
    NewTerms {
        terms: Vec<Key>,
        history: Span,
        min_count: u64,
    },
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Match { .. } => "match",
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Cardinality { .. } => "cardinality",
            RuleKind::NewTerms { .. } => "new_terms",
        }
    }
}

/// One checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub text: Option<String>,
    /// The level of the rule's hits (`severity` in the file).
    pub severity: Level,
    pub score: u8,
    pub tactic: Option<String>,
    pub enabled: bool,
    pub kind: RuleKind,
    pub group_by: Vec<Key>,
    pub when: Condition,
    /// The schedule: evaluated at most once per `every` (see the module's text).
    pub every: Option<Span>,
    /// Where the rule was written: `file:line`.
    pub origin: String,
}

/// Most keys a rule may group by or a new-terms tuple may hold.
pub const MAX_GROUP_KEYS: usize = 8;
pub const MAX_TERMS: usize = 4;

const KEYS: &[&str] = &[
    "id",
    "title",
    "text",
    "severity",
    "score",
    "tactic",
    "enabled",
    "kind",
    "group_by",
    "window",
    "min_count",
    "field",
    "min_distinct",
    "terms",
    "history",
    "every",
    "when",
];

/// Which kinds use each kind-specific key.
const KIND_KEYS: &[(&str, &[&str])] = &[
    ("window", &["threshold", "cardinality"]),
    ("min_count", &["match", "threshold", "new_terms"]),
    ("field", &["cardinality"]),
    ("min_distinct", &["cardinality"]),
    ("terms", &["new_terms"]),
    ("history", &["new_terms"]),
];

/// True for `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c);
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(inner)
}

/// Problems found while checking one rule: (key, message).
pub type Issues = Vec<(String, String)>;

struct Reader<'t> {
    table: &'t toml::Table,
    issues: Issues,
}

impl<'t> Reader<'t> {
    fn issue(&mut self, key: &str, message: impl Into<String>) {
        self.issues.push((key.to_string(), message.into()));
    }

    fn get(&self, key: &str) -> Option<&'t toml::Value> {
        self.table.get(key)
    }

    fn string(&mut self, key: &str) -> Option<&'t str> {
        match self.get(key)? {
            toml::Value::String(s) => Some(s),
            other => {
                self.issue(key, format!("must be a string, got {other}"));
                None
            }
        }
    }

    fn required_string(&mut self, key: &str) -> Option<&'t str> {
        if self.get(key).is_none() {
            self.issue(key, "is required");
        }
        self.string(key)
    }

    fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        match self.get(key)? {
            toml::Value::Integer(i) if (min..=max).contains(i) => Some(*i),
            toml::Value::Integer(i) => {
                let range = if max == i64::MAX {
                    format!("at least {min}")
                } else {
                    format!("from {min} to {max}")
                };
                self.issue(key, format!("must be {range}, got {i}"));
                None
            }
            other => {
                self.issue(key, format!("must be a whole number, got {other}"));
                None
            }
        }
    }

    fn span(&mut self, key: &str) -> Option<Span> {
        let text = self.string(key)?;
        match Span::parse(text) {
            Ok(s) if s > Span::ZERO => Some(s),
            Ok(_) => {
                self.issue(key, "must be longer than zero");
                None
            }
            Err(_) => {
                self.issue(
                    key,
                    format!("must be a duration like \"5m\", \"1h\" or \"14d\", got \"{text}\""),
                );
                None
            }
        }
    }

    fn key(&mut self, at: &str, text: &str) -> Option<Key> {
        match Key::parse(text) {
            Ok(k) => Some(k),
            Err(e) => {
                self.issue(at, format!("`{text}` is not a field path: {e}"));
                None
            }
        }
    }

    fn keys(&mut self, key: &str, min: usize, max: usize) -> Option<Vec<Key>> {
        let value = self.get(key)?;
        let Some(items) = value.as_array() else {
            self.issue(key, format!("must be an array of field paths, got {value}"));
            return None;
        };
        if items.len() < min || items.len() > max {
            self.issue(
                key,
                format!("must hold {min} to {max} field paths, got {}", items.len()),
            );
            return None;
        }
        let mut keys = Vec::new();
        for item in items {
            let Some(text) = item.as_str() else {
                self.issue(key, format!("must hold strings, got {item}"));
                return None;
            };
            let k = self.key(key, text)?;
            if keys.contains(&k) {
                self.issue(key, format!("names `{text}` twice"));
                return None;
            }
            keys.push(k);
        }
        Some(keys)
    }
}

/// Checks one `[[rule]]` table. `origin` is where it was written (`file:line`).
pub fn parse_rule(table: &toml::Table, origin: &str) -> Result<Rule, Issues> {
    let mut r = Reader {
        table,
        issues: Vec::new(),
    };
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            r.issue(key, format!("unknown key; a rule has {}", KEYS.join(", ")));
        }
    }
    let id = r.required_string("id");
    if let Some(id) = id {
        if !valid_id(id) {
            r.issue(
                "id",
                format!("`{id}` must be 1 to 64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"),
            );
        }
    }
    let title = r.required_string("title");
    if title.is_some_and(|t| t.trim().is_empty()) {
        r.issue("title", "must not be empty");
    }
    let text = r.string("text");
    let severity = r.required_string("severity").and_then(|s| {
        let found = Level::ALL.into_iter().find(|l| l.name() == s);
        if found.is_none() {
            r.issue(
                "severity",
                format!("must be one of critical, high, medium, low, informational, got \"{s}\""),
            );
        }
        found
    });
    let score = r.integer("score", 0, 100);
    let tactic = r.string("tactic");
    let enabled = match r.get("enabled") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            r.issue("enabled", format!("must be true or false, got {other}"));
            true
        }
    };
    let kind_name = r.required_string("kind");
    if let Some(k) = kind_name {
        if !["match", "threshold", "cardinality", "new_terms"].contains(&k) {
            r.issue(
                "kind",
                format!("must be one of match, threshold, cardinality, new_terms, got \"{k}\""),
            );
        }
    }
    for (key, kinds) in KIND_KEYS {
        if let Some(k) = kind_name.filter(|k| r.get(key).is_some() && !kinds.contains(k)) {
            r.issue(
                key,
                format!(
                    "is not used by `{k}` rules (only by {}); remove it",
                    kinds.join(", ")
                ),
            );
        }
    }
    let group_by = if r.get("group_by").is_some() {
        r.keys("group_by", 0, MAX_GROUP_KEYS)
    } else {
        Some(vec![Key::Principal])
    };
    let window = r.span("window");
    let min_count = r.integer("min_count", 1, i64::MAX).map(|n| n as u64);
    let min_distinct = r.integer("min_distinct", 2, i64::MAX).map(|n| n as u64);
    let field = r.string("field").and_then(|f| r.key("field", f));
    let terms = r.keys("terms", 1, MAX_TERMS);
    let history = r.span("history");
    let every = r.span("every");
    let require = |r: &mut Reader, key: &str, present: bool| {
        if !present && r.get(key).is_none() {
            r.issue(
                key,
                format!("is required for `{}` rules", kind_name.unwrap_or("")),
            );
        }
    };
    let kind = match kind_name {
        Some("match") => Some(RuleKind::Match {
            min_count: min_count.unwrap_or(1),
        }),
        Some("threshold") => {
            require(&mut r, "window", window.is_some());
            require(&mut r, "min_count", min_count.is_some());
            Some(RuleKind::Threshold {
                window: window.unwrap_or_default(),
                min_count: min_count.unwrap_or(1),
            })
        }
        Some("cardinality") => {
            require(&mut r, "window", window.is_some());
            require(&mut r, "field", field.is_some());
            require(&mut r, "min_distinct", min_distinct.is_some());
            field.clone().map(|field| RuleKind::Cardinality {
                window: window.unwrap_or_default(),
                field,
                min_distinct: min_distinct.unwrap_or(2),
            })
        }
        Some("new_terms") => {
            require(&mut r, "terms", terms.is_some());
            require(&mut r, "history", history.is_some());
            terms.clone().map(|terms| RuleKind::NewTerms {
                terms,
                history: history.unwrap_or_default(),
                min_count: min_count.unwrap_or(1),
            })
        }
        _ => None,
    };
    let when = match r.get("when") {
        None => {
            r.issue(
                "when",
                "is required: the condition on single records, e.g. [rule.when] all = [...]",
            );
            None
        }
        Some(value) => {
            let mut found = Vec::new();
            let when = condition::parse(value, "when", 0, &mut found);
            r.issues.extend(found);
            when
        }
    };
    let issues = r.issues;
    match (id, title, severity, kind, group_by, when) {
        (Some(id), Some(title), Some(severity), Some(kind), Some(group_by), Some(when))
            if issues.is_empty() =>
        {
            Ok(Rule {
                id: id.to_string(),
                title: title.to_string(),
                text: text.map(str::to_string),
                severity,
                score: score.map_or(default_score(severity), |s| s as u8),
                tactic: tactic.map(str::to_string),
                enabled,
                kind,
                group_by,
                when,
                every,
                origin: origin.to_string(),
            })
        }
        _ => Err(issues),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rule, Issues> {
        parse_rule(&toml::from_str(text).unwrap(), "test.toml:1")
    }

    const WHEN: &str = "\n[when]\nall = [{ field = \"eventName\", equals = \"X\" }]\n";

    #[test]
    fn defaults_fill_what_is_left_out() {
        let rule = parse(&format!(
            "id = \"a\"\ntitle = \"A\"\nseverity = \"high\"\nkind = \"match\"{WHEN}"
        ))
        .unwrap();
        assert_eq!(rule.score, 70);
        assert!(rule.enabled);
        assert_eq!(rule.group_by, [Key::Principal]);
        assert!(matches!(rule.kind, RuleKind::Match { min_count: 1 }));
    }

    #[test]
    fn kinds_need_their_keys_and_refuse_others() {
        let issues = parse(&format!(
            "id = \"a\"\ntitle = \"A\"\nseverity = \"low\"\nkind = \"threshold\"\nfield = \"x\"{WHEN}"
        ))
        .unwrap_err();
        let keys: Vec<&str> = issues.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["field", "window", "min_count"], "{issues:?}");
        let issues = parse(&format!(
            "id = \"a\"\ntitle = \"A\"\nseverity = \"low\"\nkind = \"cardinality\"\nwindow = \"5m\"\nfield = \"x\"\nmin_distinct = 1{WHEN}"
        ))
        .unwrap_err();
        assert_eq!(issues[0].0, "min_distinct");
        assert!(issues[0].1.contains("at least 2"));
    }

    #[test]
    fn every_bad_key_is_reported() {
        let issues = parse(
            "id = \"Bad Id\"\ntitle = \"\"\nseverity = \"severe\"\nscore = 101\nkind = \"new_terms\"\nterms = []\nhistory = \"two weeks\"\ntypo = 1\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = issues.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["typo", "id", "title", "severity", "score", "terms", "history", "when"],
            "{issues:#?}"
        );
    }

    #[test]
    fn ids_follow_the_pattern() {
        assert!(valid_id("console-signin-failures"));
        assert!(valid_id("0.a_b-c"));
        assert!(!valid_id("-a"));
        assert!(!valid_id("A"));
        assert!(!valid_id(""));
        assert!(!valid_id(&"a".repeat(65)));
    }
}
