//! Field paths into a record's JSON, and the keys rules group and count by.
//!
//! A path is dot-separated keys, `userIdentity.sessionContext.sessionIssuer.userName`; a key that
//! itself holds a dot is quoted, `requestParameters."x.y"`. A path that crosses an array visits
//! every element: `requestParameters.instancesSet.items.instanceType` reaches the type of each
//! item, and a test on it holds when it holds for any of them. JSON `null` reads as absent.

use std::fmt;

use serde_json::Value;

/// A parsed field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    keys: Vec<String>,
}

impl FieldPath {
    /// Parses `a.b."c.d"`; says what is wrong and at which character.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut keys = Vec::new();
        let mut i = 0;
        loop {
            let start = i;
            let mut key = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "the quote at character {} is never closed",
                                start + 1
                            ))
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                            key.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&c) => {
                            key.push(c);
                            i += 1;
                        }
                    }
                }
                if !matches!(chars.get(i), None | Some('.')) {
                    return Err(format!(
                        "expected `.` or the end after the quoted key at character {}",
                        i + 1
                    ));
                }
            } else {
                while let Some(&c) = chars.get(i) {
                    if c == '.' {
                        break;
                    }
                    if c == '"' {
                        return Err(format!(
                            "a `\"` at character {} may only start a key",
                            i + 1
                        ));
                    }
                    key.push(c);
                    i += 1;
                }
            }
            if key.is_empty() {
                return Err(format!("empty key at character {}", start + 1));
            }
            keys.push(key);
            if i >= chars.len() {
                break;
            }
            // Skip the `.`; a trailing one leaves an empty key, caught above.
            i += 1;
            if i >= chars.len() {
                return Err(format!("empty key at character {}", i + 1));
            }
        }
        Ok(FieldPath {
            text: text.to_string(),
            keys,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// True when `test` holds for some value the path reaches. The value handed over is what
    /// sits at the end of the path, arrays included (length tests need them whole).
    pub fn any<'v>(&self, record: &'v Value, test: &mut dyn FnMut(&'v Value) -> bool) -> bool {
        visit(record, &self.keys, test)
    }

    /// The first value the path reaches, as text (see [`render`]).
    pub fn first_text(&self, record: &Value) -> Option<String> {
        let mut found = None;
        self.any(record, &mut |v| {
            found = render(v);
            found.is_some()
        });
        found
    }

    /// Up to `cap` distinct values the path reaches, as text, in the order met. Leaf arrays
    /// contribute each element.
    pub fn texts(&self, record: &Value, cap: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        self.any(record, &mut |v| {
            scalars(v, &mut |s| {
                if let Some(t) = render(s) {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
                out.len() >= cap
            })
        });
        out
    }

    /// The top-level key, when the path is exactly one key (the prefilter looks for these).
    pub fn single_key(&self) -> Option<&str> {
        match self.keys.as_slice() {
            [k] => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn visit<'v>(v: &'v Value, keys: &[String], test: &mut dyn FnMut(&'v Value) -> bool) -> bool {
    match (keys.split_first(), v) {
        (_, Value::Null) => false,
        (None, leaf) => test(leaf),
        (Some(_), Value::Array(items)) => items.iter().any(|item| visit(item, keys, test)),
        (Some((key, rest)), Value::Object(map)) => {
            map.get(key).is_some_and(|child| visit(child, rest, test))
        }
        _ => false,
    }
}

/// Calls `test` on `v`, or on each element (recursively) when `v` is an array, until it holds.
pub fn scalars<'v>(v: &'v Value, test: &mut dyn FnMut(&'v Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|item| scalars(item, test)),
        other => test(other),
    }
}

/// A value as the text rules group and count by: strings as they are, numbers and booleans as
/// JSON writes them, objects as compact JSON, an array by its first element; `null` is nothing.
pub fn render(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.iter().find_map(render),
        Value::Object(_) => serde_json::to_string(v).ok(),
    }
}

/// What a rule groups by or counts: a field, or the record's normalised principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The principal key of `crate::cloudtrail::Principal` (the role for role sessions).
    Principal,
    Path(FieldPath),
}

impl Key {
    /// `principal` means the normalised principal; anything else is a field path (write
    /// `"principal"` with quotes for a record field of that name).
    pub fn parse(text: &str) -> Result<Key, String> {
        if text == "principal" {
            Ok(Key::Principal)
        } else {
            FieldPath::parse(text).map(Key::Path)
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Key::Principal => "principal",
            Key::Path(p) => p.as_str(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(text: &str) -> Vec<String> {
        FieldPath::parse(text).unwrap().keys().to_vec()
    }

    #[test]
    fn paths_split_on_dots_and_quotes_keep_them() {
        assert_eq!(keys("a.b.c"), ["a", "b", "c"]);
        assert_eq!(
            keys(r#"requestParameters."x.y""#),
            ["requestParameters", "x.y"]
        );
        assert_eq!(keys(r#""a\"b".c"#), ["a\"b", "c"]);
        assert_eq!(keys("eventName"), ["eventName"]);
    }

    #[test]
    fn bad_paths_say_where() {
        for (text, needle) in [
            ("", "empty key at character 1"),
            ("a..b", "empty key at character 3"),
            ("a.", "empty key at character 3"),
            (".a", "empty key at character 1"),
            (r#"a."b"#, "never closed"),
            (r#"a."b"c"#, "expected `.`"),
            (r#"a"b"#, "may only start a key"),
        ] {
            let e = FieldPath::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn paths_cross_arrays_and_null_is_absent() {
        let r = json!({"requestParameters": {"instancesSet": {"items": [
            {"instanceType": "t3.micro"}, {"instanceType": "p2.xlarge"}]},
            "n": null, "x.y": 1}});
        let p = FieldPath::parse("requestParameters.instancesSet.items.instanceType").unwrap();
        assert!(p.any(&r, &mut |v| v == "p2.xlarge"));
        assert_eq!(p.first_text(&r).as_deref(), Some("t3.micro"));
        assert_eq!(p.texts(&r, 10), ["t3.micro", "p2.xlarge"]);
        assert_eq!(p.texts(&r, 1), ["t3.micro"]);
        let n = FieldPath::parse("requestParameters.n").unwrap();
        assert!(!n.any(&r, &mut |_| true));
        let q = FieldPath::parse(r#"requestParameters."x.y""#).unwrap();
        assert_eq!(q.first_text(&r).as_deref(), Some("1"));
        let missing = FieldPath::parse("requestParameters.instancesSet.nope").unwrap();
        assert!(!missing.any(&r, &mut |_| true));
        // A string where an object was expected reads as absent, it does not panic.
        let odd = json!({"requestParameters": "a string"});
        assert!(!p.any(&odd, &mut |_| true));
    }

    #[test]
    fn principal_is_a_key_unless_quoted() {
        assert_eq!(Key::parse("principal").unwrap(), Key::Principal);
        assert!(matches!(
            Key::parse(r#""principal""#).unwrap(),
            Key::Path(_)
        ));
    }
}
