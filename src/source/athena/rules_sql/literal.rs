//! Literals and keys: the one way a value or a key gets into the rule SQL.

/// `text` as one SQL string literal: quotes doubled; NUL refused (Athena cannot carry it, and
/// a truncating layer would end the literal early).
pub fn literal(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("holds a NUL character, which an SQL string cannot carry".into());
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// Most characters of one key in a JSON path.
pub const MAX_KEY_CHARS: usize = 128;

/// Checks one key of a path into a JSON-text column: 1 to 128 of ASCII letters, digits and
/// `_ - . : @ /`. Quotes, backslashes, brackets and spaces are refused rather than escaped:
/// JSON-path escaping differs between Trino and the engines the tests use, and CloudTrail's
/// keys never need them.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the key `{}` cannot be written into a JSON path: keys must be 1 to \
             {MAX_KEY_CHARS} of ASCII letters, digits and _ - . : @ /",
            key.chars().take(80).collect::<String>()
        ))
    }
}

/// `$["a"]["b"]` as a literal, every key checked.
pub(super) fn json_path(keys: &[String]) -> Result<String, String> {
    let mut path = String::from("$");
    for key in keys {
        check_key(key)?;
        path.push_str("[\"");
        path.push_str(key);
        path.push_str("\"]");
    }
    literal(&path)
}

/// A number as a DOUBLE expression, through a literal so that no formatting reaches SQL bare.
pub(super) fn double(n: f64) -> Result<String, String> {
    if !n.is_finite() {
        return Err(format!("{n} is not a finite number"));
    }
    Ok(format!("CAST({} AS DOUBLE)", literal(&n.to_string())?))
}

/// A LIKE pattern (escape character `\`) from literal text.
pub(super) fn like_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

pub(super) fn glob_to_like(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            c => like_escape(&c.to_string(), &mut out),
        }
    }
    out
}
