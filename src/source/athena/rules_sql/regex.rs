//! The engine's regex syntax written out for Athena's `regexp_like`, anchored to the whole value.

pub(super) const DIGIT: &str = "0-9";
pub(super) const WORD: &str = "0-9A-Za-z_";
pub(super) const SPACE: &str = "\\x09-\\x0D ";

pub(super) fn hex(c: char) -> String {
    format!("\\x{:02X}", c as u32)
}

/// One literal character: metacharacters escaped, ASCII controls as `\xHH`.
pub(super) fn regex_char(c: char, in_class: bool, out: &mut String) {
    let meta = "\\^$.|?*+()[]{}-";
    if c.is_ascii_control() {
        out.push_str(&hex(c));
    } else if meta.contains(c) || (in_class && c == '&') {
        out.push('\\');
        out.push(c);
    } else {
        out.push(c);
    }
}

/// What `\c` means in the engine's syntax, written for Trino/RE2: a class body or a char.
pub(super) enum Escape {
    Class(&'static str, bool),
    Char(char),
}

pub(super) fn escape(c: char) -> Result<Escape, String> {
    Ok(match c {
        'd' => Escape::Class(DIGIT, false),
        'w' => Escape::Class(WORD, false),
        's' => Escape::Class(SPACE, false),
        'D' => Escape::Class(DIGIT, true),
        'W' => Escape::Class(WORD, true),
        'S' => Escape::Class(SPACE, true),
        'n' => Escape::Char('\n'),
        'r' => Escape::Char('\r'),
        't' => Escape::Char('\t'),
        c if c.is_ascii_punctuation() || c == ' ' => Escape::Char(c),
        c => return Err(format!("unsupported escape `\\{c}`")),
    })
}

/// Rewrites a pattern the engine accepted (`crate::detect::rules::regex`) into one that Trino
/// (Joni, Java syntax) and RE2 read alike, anchored to the whole value.
pub fn regex_to_sql(pattern: &str, ignore_case: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    if ignore_case {
        if chars.iter().any(|c| !c.is_ascii() && c.is_alphabetic()) {
            return Err(
                "an ignore_case pattern with non-ASCII letters: Athena's (?i) folds ASCII only"
                    .into(),
            );
        }
        out.push_str("(?i)");
    }
    out.push_str("\\A(?:");
    let mut i = 0;
    let end = |what: &str| format!("the pattern ends inside {what}");
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let e = *chars.get(i).ok_or_else(|| end("an escape"))?;
                i += 1;
                match escape(e)? {
                    Escape::Class(body, negated) => {
                        out.push_str(if negated { "[^" } else { "[" });
                        out.push_str(body);
                        out.push(']');
                    }
                    Escape::Char(c) => regex_char(c, false, &mut out),
                }
            }
            '[' => i = regex_class(&chars, i, &mut out)?,
            '.' => out.push_str("[^\\x0A]"),
            '^' => out.push_str("\\A"),
            '$' => out.push_str("\\z"),
            '(' => {
                if chars.get(i) == Some(&'?') && chars.get(i + 1) == Some(&':') {
                    i += 2;
                }
                out.push_str("(?:");
            }
            ')' | '|' | '*' | '+' | '?' => out.push(c),
            '{' => {
                // A count `{m}`, `{m,}`, `{m,n}`: digits and a comma only, as the engine checked.
                out.push('{');
                loop {
                    let d = *chars.get(i).ok_or_else(|| end("a count"))?;
                    i += 1;
                    if !(d.is_ascii_digit() || d == ',' || d == '}') {
                        return Err(format!("`{d}` inside a count"));
                    }
                    out.push(d);
                    if d == '}' {
                        break;
                    }
                }
            }
            c => regex_char(c, false, &mut out),
        }
    }
    out.push_str(")\\z");
    Ok(out)
}

/// A class from after its `[`; returns the position after its `]`. Parsed as the engine parses
/// it (a `]` first is literal; `a-z` unless the `-` is last) and written item by item.
pub(super) fn regex_class(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, String> {
    let unclosed = || "a `[` is never closed".to_string();
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *chars.get(i).ok_or_else(unclosed)?;
        i += 1;
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            let e = *chars.get(i).ok_or_else(unclosed)?;
            i += 1;
            match escape(e)? {
                Escape::Class(body, false) => {
                    out.push_str(body);
                    continue;
                }
                Escape::Class(..) => return Err(format!("`\\{e}` inside [ ]")),
                Escape::Char(c) => c,
            }
        } else {
            c
        };
        regex_char(lo, true, out);
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|n| *n != ']') {
            i += 1;
            let mut hi = *chars.get(i).ok_or_else(unclosed)?;
            i += 1;
            if hi == '\\' {
                let e = *chars.get(i).ok_or_else(unclosed)?;
                i += 1;
                match escape(e)? {
                    Escape::Char(c) => hi = c,
                    Escape::Class(..) => return Err("a class cannot end a range".into()),
                }
            }
            out.push('-');
            regex_char(hi, true, out);
        }
    }
    out.push(']');
    Ok(i)
}
