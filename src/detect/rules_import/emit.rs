//! The conditions an imported rule is made of, and their rendering as one `[[rule]]` TOML table.
//!
//! The TOML is written by hand rather than through `toml::to_string` so that conditions come out
//! as one inline table per line (`{ field = "eventName", equals = "ConsoleLogin" }`), the way a
//! person writes them; every table is parsed back by the caller before it is handed out.

use std::fmt::Write as _;

/// A value a condition compares with.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The one operation of a field test.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Op {
    Equals(Value),
    OneOf(Vec<Value>),
    Wildcard(String),
    Prefix(String),
    Regex(String),
    Exists(bool),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
}

impl Op {
    fn key(&self) -> &'static str {
        match self {
            Op::Equals(_) => "equals",
            Op::OneOf(_) => "one_of",
            Op::Wildcard(_) => "wildcard",
            Op::Prefix(_) => "prefix",
            Op::Regex(_) => "regex",
            Op::Exists(_) => "exists",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
        }
    }
}

/// A field test or a group of conditions.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Cond {
    Field {
        path: String,
        op: Op,
        ignore_case: bool,
    },
    Group(Group),
}

impl Cond {
    pub(super) fn field(path: &str, op: Op) -> Cond {
        Cond::Field {
            path: path.to_string(),
            op,
            ignore_case: false,
        }
    }
}

/// `all` AND `any` AND NOT `none`; an empty list is no constraint, so an empty group matches
/// every event (Elasticsearch's `match_all`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Group {
    pub all: Vec<Cond>,
    pub any: Vec<Cond>,
    pub none: Vec<Cond>,
}

impl Group {
    pub(super) fn is_everything(&self) -> bool {
        self.all.is_empty() && self.any.is_empty() && self.none.is_empty()
    }

    /// Rewrites the group into the flattest equivalent: AND inside AND, OR inside OR and NOT-OR
    /// inside NOT are spliced into their parent, and a lone `any` member becomes an `all` member.
    /// Logic is unchanged; only nesting a reader would have to untangle goes away.
    pub(super) fn simplify(self) -> Group {
        let Group { all, any, none } = self;
        let mut out = Group::default();
        let mut lifted_any: Option<Vec<Cond>> = None;
        for cond in all {
            match simplify_cond(cond) {
                Cond::Group(g) if g.is_everything() => {}
                Cond::Group(g) if g.any.is_empty() => {
                    out.all.extend(g.all);
                    out.none.extend(g.none);
                }
                // (a OR b) inside AND can be the parent's OR list only if the parent has none.
                Cond::Group(g) if any.is_empty() && lifted_any.is_none() => {
                    out.all.extend(g.all);
                    out.none.extend(g.none);
                    lifted_any = Some(g.any);
                }
                other => out.all.push(other),
            }
        }
        for cond in any {
            match simplify_cond(cond) {
                Cond::Group(g) if g.all.is_empty() && g.none.is_empty() && !g.any.is_empty() => {
                    out.any.extend(g.any)
                }
                other => out.any.push(other),
            }
        }
        if let Some(lifted) = lifted_any {
            out.any = lifted;
        }
        for cond in none {
            match simplify_cond(cond) {
                // NOT (a OR b) is NOT a AND NOT b: the members join the parent's `none`.
                Cond::Group(g) if g.all.is_empty() && g.none.is_empty() && !g.any.is_empty() => {
                    out.none.extend(g.any)
                }
                // NOT (a AND b) with a single member is NOT a.
                Cond::Group(g) if g.any.is_empty() && g.none.is_empty() && g.all.len() == 1 => {
                    out.none.extend(g.all)
                }
                other => out.none.push(other),
            }
        }
        if out.any.len() == 1 {
            out.all.append(&mut out.any);
        }
        out
    }
}

fn simplify_cond(cond: Cond) -> Cond {
    match cond {
        Cond::Group(g) => {
            let g = g.simplify();
            // A group holding a single condition is that condition.
            if g.any.is_empty() && g.none.is_empty() && g.all.len() == 1 {
                let mut all = g.all;
                all.pop().unwrap_or(Cond::Group(Group::default()))
            } else {
                Cond::Group(g)
            }
        }
        field => field,
    }
}

/// What the `[[rule]]` table holds, already converted.
pub(super) struct RuleSpec<'a> {
    /// Comment lines written above the table (provenance).
    pub comments: &'a [String],
    pub id: &'a str,
    pub title: &'a str,
    pub text: &'a str,
    pub enabled: bool,
    /// `RunScheduleInMinutes`, when it was above zero.
    pub every_minutes: Option<u64>,
    pub new_terms: Option<NewTerms<'a>>,
    pub min_count: u64,
    pub when: &'a Group,
}

pub(super) struct NewTerms<'a> {
    pub terms: &'a [String],
    /// Already a trailhound duration (`60h`).
    pub history: &'a str,
    /// The Elasticsearch setting it came from, for the trailing comment.
    pub period_minutes: u64,
}

/// The table as TOML text, ending in a newline.
pub(super) fn render(rule: &RuleSpec<'_>) -> String {
    let mut out = String::new();
    for line in rule.comments {
        out.push_str("# ");
        out.push_str(&comment_safe(line));
        out.push('\n');
    }
    out.push_str("[[rule]]\n");
    let _ = writeln!(out, "id = {}", string(rule.id));
    let _ = writeln!(out, "title = {}", string(rule.title));
    let _ = writeln!(out, "text = {}", text_string(rule.text));
    out.push_str("severity = \"medium\"  # the Elasticsearch rule had none: medium by default\n");
    let _ = writeln!(out, "enabled = {}", rule.enabled);
    match &rule.new_terms {
        Some(nt) => {
            out.push_str("kind = \"new_terms\"\n");
            out.push_str("group_by = []\n");
            let terms: Vec<String> = nt.terms.iter().map(|t| string(t)).collect();
            let _ = writeln!(out, "terms = [{}]", terms.join(", "));
            let _ = writeln!(
                out,
                "history = {}  # AlertPeriodMinutes = {}",
                string(nt.history),
                nt.period_minutes
            );
        }
        None => {
            out.push_str("kind = \"match\"\n");
            out.push_str("group_by = []\n");
        }
    }
    let _ = writeln!(out, "min_count = {}", rule.min_count);
    if let Some(m) = rule.every_minutes {
        let _ = writeln!(out, "every = \"{m}m\"  # RunScheduleInMinutes = {m}");
    }
    out.push_str("[rule.when]\n");
    for (key, list) in [
        ("all", &rule.when.all),
        ("any", &rule.when.any),
        ("none", &rule.when.none),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{key} = [");
        for cond in list {
            out.push_str("  ");
            inline_cond(&mut out, cond);
            out.push_str(",\n");
        }
        out.push_str("]\n");
    }
    out
}

fn inline_cond(out: &mut String, cond: &Cond) {
    match cond {
        Cond::Field {
            path,
            op,
            ignore_case,
        } => {
            let _ = write!(out, "{{ field = {}, {} = ", string(path), op.key());
            match op {
                Op::Equals(v) | Op::Gt(v) | Op::Gte(v) | Op::Lt(v) | Op::Lte(v) => value(out, v),
                Op::OneOf(vs) => {
                    out.push('[');
                    for (i, v) in vs.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        value(out, v);
                    }
                    out.push(']');
                }
                Op::Wildcard(s) | Op::Prefix(s) | Op::Regex(s) => out.push_str(&string(s)),
                Op::Exists(b) => {
                    let _ = write!(out, "{b}");
                }
            }
            if *ignore_case {
                out.push_str(", ignore_case = true");
            }
            out.push_str(" }");
        }
        Cond::Group(g) => {
            out.push_str("{ ");
            let mut first = true;
            for (key, list) in [("all", &g.all), ("any", &g.any), ("none", &g.none)] {
                if list.is_empty() {
                    continue;
                }
                if !first {
                    out.push_str(", ");
                }
                first = false;
                let _ = write!(out, "{key} = [");
                for (i, c) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    inline_cond(out, c);
                }
                out.push(']');
            }
            if first {
                // Only reached if an empty group survived simplification: it matches everything.
                out.push_str("all = []");
            }
            out.push_str(" }");
        }
    }
}

fn value(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => out.push_str(&string(s)),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // `{:?}` always keeps a `.` or an exponent, so TOML reads a float back.
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
    }
}

/// A TOML basic string.
pub(super) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_char(&mut out, c, false);
    }
    out.push('"');
    out
}

/// A multi-line basic string when the text has line breaks, so the alert text reads as written.
fn text_string(s: &str) -> String {
    if !s.contains('\n') {
        return string(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // The line break right after the opening quotes is not part of the value.
    out.push_str("\"\"\"\n");
    for c in s.chars() {
        escape_char(&mut out, c, true);
    }
    out.push_str("\"\"\"");
    out
}

fn escape_char(out: &mut String, c: char, multiline: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' if multiline => out.push('\n'),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() => {
            let _ = write!(out, "\\u{:04X}", c as u32);
        }
        c => out.push(c),
    }
}

/// One line of text that is safe inside a `#` comment: no line breaks or control characters.
pub(super) fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(path: &str, v: &str) -> Cond {
        Cond::field(path, Op::Equals(Value::Str(v.into())))
    }

    #[test]
    fn nested_and_is_spliced_into_the_parent() {
        let g = Group {
            all: vec![
                eq("a", "1"),
                Cond::Group(Group {
                    all: vec![eq("b", "2"), eq("c", "3")],
                    none: vec![eq("d", "4")],
                    ..Group::default()
                }),
            ],
            ..Group::default()
        }
        .simplify();
        assert_eq!(g.all, vec![eq("a", "1"), eq("b", "2"), eq("c", "3")]);
        assert_eq!(g.none, vec![eq("d", "4")]);
    }

    #[test]
    fn two_or_groups_under_and_stay_separate() {
        let or = |x: &str, y: &str| {
            Cond::Group(Group {
                any: vec![eq("f", x), eq("f", y)],
                ..Group::default()
            })
        };
        let g = Group {
            all: vec![or("1", "2"), or("3", "4")],
            ..Group::default()
        }
        .simplify();
        // The first becomes the parent's `any`; the second must stay a group, or the two ORs
        // would merge into one.
        assert_eq!(g.any, vec![eq("f", "1"), eq("f", "2")]);
        assert_eq!(g.all, vec![or("3", "4")]);
    }

    #[test]
    fn not_of_or_becomes_a_list_of_nots() {
        let g = Group {
            none: vec![Cond::Group(Group {
                any: vec![eq("a", "1"), eq("b", "2")],
                ..Group::default()
            })],
            ..Group::default()
        }
        .simplify();
        assert_eq!(g.none, vec![eq("a", "1"), eq("b", "2")]);
    }

    #[test]
    fn strings_escape_what_toml_requires() {
        assert_eq!(string("a\"b\\c\u{1}\n"), "\"a\\\"b\\\\c\\u0001\\n\"");
        let t = format!("x = {}\n", text_string("line \"\"\" one\nline two\\"));
        let parsed: toml::Table = toml::from_str(&t).expect("multi-line string parses");
        assert_eq!(
            parsed["x"].as_str(),
            Some("line \"\"\" one\nline two\\"),
            "{t}"
        );
    }
}
