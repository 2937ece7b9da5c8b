//! Reading the config text into its types: TOML syntax first, then the schema, with every
//! unknown key and every value of the wrong type in the file reported at once, each at its line
//! and key.
//!
//! serde stops at the first error, so the schema is checked again and again: each time a
//! problem is found, the statement it sits in is blanked out (spaces, so that every later byte
//! keeps its line and column) and the text is read anew, until it reads or the problems can no
//! longer be separated.
//!
//! Messages name keys, never quote the line they are on: a secret pasted under the wrong key
//! (`token = "..."` in `[[sinks.hec]]`) must not be echoed to a terminal or a log.

use serde::de::DeserializeOwned;

/// More problems than this in one file are not worth listing one by one.
const MAX_PROBLEMS: usize = 50;
/// Texts longer than this (no real config comes close) get their first problem only, so that
/// re-reading a hostile file cannot take long.
const MAX_REREAD_BYTES: usize = 256 << 10;
/// A value spanning more lines than this is not blanked out; the search stops there.
const MAX_STATEMENT_LINES: usize = 200;

/// Why a text is not a config: TOML that does not parse (one problem, where parsing stopped),
/// or problems with keys and values (all of them).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadProblems {
    Syntax(String),
    Schema(Vec<String>),
}

/// Reads `text` as a `T`, or says everything that is wrong with it.
pub(super) fn read<T: DeserializeOwned>(text: &str) -> Result<T, ReadProblems> {
    if let Err(e) = toml::from_str::<toml::Table>(text) {
        return Err(ReadProblems::Syntax(describe(text, &e, false)));
    }
    let mut work = text.as_bytes().to_vec();
    let mut problems = Vec::new();
    let mut last_span = None;
    loop {
        // Blanking replaces whole lines, so the text stays UTF-8 and the conversion is free.
        let current = String::from_utf8_lossy(&work).into_owned();
        let e = match toml::from_str::<T>(&current) {
            Ok(value) if problems.is_empty() => return Ok(value),
            Ok(_) => break,
            Err(e) => e,
        };
        problems.push(describe(&current, &e, true));
        let Some(span) = e.span() else { break };
        let repeated = last_span.as_ref() == Some(&span);
        if repeated || problems.len() >= MAX_PROBLEMS || text.len() > MAX_REREAD_BYTES {
            break;
        }
        last_span = Some(span.clone());
        if !blank_statement(&mut work, span.start, span.end) {
            break;
        }
    }
    Err(ReadProblems::Schema(problems))
}

fn line_start(b: &[u8], at: usize) -> usize {
    b[..at.min(b.len())]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1)
}

fn line_end(b: &[u8], at: usize) -> usize {
    let at = at.min(b.len());
    b[at..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |i| at + i)
}

fn is_header(line: &[u8]) -> bool {
    line.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|&c| c == b'[')
}

/// Replaces `b[from..to]` with spaces, newlines kept, so every later byte stays where it was.
/// Callers pass whole lines, so no character is cut and the text stays UTF-8.
fn blank(b: &mut [u8], from: usize, to: usize) {
    for c in &mut b[from..to] {
        if *c != b'\n' {
            *c = b' ';
        }
    }
}

/// Blanks the statement holding the problem at `start..end`: a header's whole section, or the
/// `key = value` lines the span touches, extended until the text parses again (a value can run
/// over several lines). False when no such extension parses.
fn blank_statement(work: &mut Vec<u8>, start: usize, end: usize) -> bool {
    let from = line_start(work, start);
    let first_line_end = line_end(work, start);
    if is_header(&work[from..first_line_end]) {
        // The section runs to the next header.
        let mut to = first_line_end;
        while to < work.len() {
            let next = line_end(work, to + 1);
            if is_header(&work[to + 1..next]) {
                break;
            }
            to = next;
        }
        blank(work, from, to);
        return parses(work);
    }
    let mut to = line_end(work, end.saturating_sub(1).max(start));
    for _ in 0..MAX_STATEMENT_LINES {
        let mut trial = work.clone();
        blank(&mut trial, from, to);
        if parses(&trial) {
            *work = trial;
            return true;
        }
        if to >= work.len() {
            return false;
        }
        to = line_end(work, to + 1);
    }
    false
}

fn parses(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|t| toml::from_str::<toml::Table>(t).is_ok())
}

/// `line L, column C: `key`: message` for an error in `text`, without quoting the text.
fn describe(text: &str, e: &toml::de::Error, with_key: bool) -> String {
    let message = e.message().trim();
    let message = if message.is_empty() {
        "is not valid TOML here (check quotes, brackets and line breaks)"
    } else {
        message
    };
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let b = text.as_bytes();
    let at = span.start.min(b.len());
    let line = b[..at].iter().filter(|&&c| c == b'\n').count() + 1;
    let column = text
        .get(line_start(b, at)..at)
        .map_or(1, |s| s.chars().count() + 1);
    let message = without_quoted_values(message);
    let key = if with_key { key_path(text, at) } else { None };
    match key {
        Some(key) => format!("line {line}, column {column}: `{key}`: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// The message without the text values it quotes (`invalid type: string "...", expected a
/// boolean`): the line and key say where the value is, and the value may be a secret written
/// under the wrong key. Values in backticks are kept when short (`unknown variant `hig``).
fn without_quoted_values(message: &str) -> String {
    const SHORT: usize = 24;
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        out.push_str(&rest[..open]);
        let quote = rest.as_bytes()[open];
        let body = &rest[open + 1..];
        // serde writes strings with Debug escapes: a quote inside is `\"`.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if quote == b'"' && !escaped => escaped = true,
                c if c as u32 == u32::from(quote) && !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            out.push_str(&rest[open..]);
            return out;
        };
        let value = &body[..end];
        if quote == b'"' {
            out.push_str("(value not shown)");
        } else if value.chars().count() > SHORT {
            out.push_str("`...`");
        } else {
            out.push('`');
            out.push_str(value);
            out.push('`');
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The dotted path of the key whose statement holds byte `at`: the table header above it and
/// the key before `=` on its line (or on the line that opened a value running over several).
fn key_path(text: &str, at: usize) -> Option<String> {
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .scan(0usize, |pos, l| {
            let start = *pos;
            *pos += l.len() + 1;
            Some((start, l))
        })
        .collect();
    let here = lines.iter().rposition(|(start, _)| *start <= at)?;
    let header_name = |l: &str| {
        let t = l.trim();
        let t = t.split('#').next().unwrap_or(t).trim();
        t.trim_start_matches('[')
            .trim_end_matches(']')
            .trim()
            .to_string()
    };
    if is_header(lines[here].1.as_bytes()) {
        return Some(short(&header_name(lines[here].1)));
    }
    let key_line = (here.saturating_sub(MAX_STATEMENT_LINES)..=here)
        .rev()
        .find(|&i| !is_header(lines[i].1.as_bytes()) && lines[i].1.contains('='))?;
    let key = lines[key_line].1.split('=').next()?.trim();
    let section = lines[..key_line]
        .iter()
        .rev()
        .find(|(_, l)| is_header(l.as_bytes()))
        .map(|(_, l)| header_name(l));
    Some(short(&match section {
        Some(s) if !s.is_empty() => format!("{s}.{key}"),
        _ => key.to_string(),
    }))
}

/// Keys are the user's own text: shown whole unless absurdly long.
fn short(key: &str) -> String {
    const MAX: usize = 80;
    if key.chars().count() <= MAX {
        key.to_string()
    } else {
        key.chars().take(MAX).collect::<String>() + "..."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        n: u32,
        names: Vec<String>,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Doc {
        a: Inner,
        b: Inner,
        list: Vec<Inner>,
    }

    fn problems(text: &str) -> Vec<String> {
        match read::<Doc>(text) {
            Err(ReadProblems::Schema(p)) => p,
            other => panic!("expected schema problems, got {other:?}"),
        }
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported_with_its_line_and_key() {
        let p = problems(
            "[a]\nn = \"x\"\nzz = 1\n\n[b]\nnames = [\n  \"ok\",\n  4,\n]\n\n[[list]]\nn = true\n",
        );
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(
            p[0].starts_with("line 2, column 5: `a.n`: invalid type"),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with("line 3, column 1: `a.zz`: unknown field"),
            "{}",
            p[1]
        );
        assert!(p[2].starts_with("line 8, column 3: `b.names`:"), "{}", p[2]);
        assert!(p[3].starts_with("line 12, column 5: `list.n`:"), "{}", p[3]);
    }

    #[test]
    fn an_unknown_section_is_one_problem_not_one_per_key() {
        let p = problems("[zz]\nx = 1\ny = 2\n[a]\nn = 1\nq = 2\n");
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].contains("`zz`: unknown field"), "{}", p[0]);
        assert!(p[1].contains("`a.q`: unknown field"), "{}", p[1]);
    }

    #[test]
    fn messages_never_quote_the_line_they_are_about() {
        let secret = "c0ffee00-7e57-4a11-b0b0-5ecre7000001";
        for text in [
            format!("[a]\ntoken = \"{secret}\"\n"),
            format!("[a]\nn = 1 {secret}\n"),
            format!("[a]\nn = 1\n\"{secret}\n"),
        ] {
            let e = read::<Doc>(&text).unwrap_err();
            let shown = format!("{e:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn quoted_values_leave_messages_and_short_names_stay() {
        assert_eq!(
            without_quoted_values("invalid type: string \"se\\\"cret\", expected a boolean"),
            "invalid type: string (value not shown), expected a boolean"
        );
        assert_eq!(
            without_quoted_values("unknown field `zz`, expected `a` or `b`"),
            "unknown field `zz`, expected `a` or `b`"
        );
        assert_eq!(
            without_quoted_values("unknown variant `4e7b1c2a-7e57-4a11-b0b0-5ecre7000042`"),
            "unknown variant `...`"
        );
    }

    #[test]
    fn a_valid_text_reads_and_a_syntax_error_is_one_problem() {
        assert_eq!(read::<Doc>("[a]\nn = 3\n").unwrap().a.n, 3);
        let Err(ReadProblems::Syntax(m)) = read::<Doc>("[a\n") else {
            panic!("a syntax error");
        };
        assert!(m.starts_with("line 1, column"), "{m}");
        let Err(ReadProblems::Syntax(m)) = read::<Doc>("\r") else {
            panic!("a syntax error");
        };
        assert!(m.contains("not valid TOML"), "{m}");
    }
}
