//! A tiny JSON object writer that keeps keys in the order they are written.
//!
//! CloudTrail writes its fields in a fixed order (`eventVersion`, `userIdentity`, `eventTime`,
//! ...). `serde_json::Value` sorts keys unless a feature this crate does not enable is on, so
//! records are assembled here instead; nested parameters may still be `Value`s.

use serde_json::Value;

/// Appends `text` as a JSON string literal.
pub fn push_str_literal(out: &mut String, text: &str) {
    out.push('"');
    // Nearly every string needs no escaping; copy those whole.
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(text);
        out.push('"');
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An object under construction; `finish` closes it.
pub struct Obj {
    buf: String,
    empty: bool,
}

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

impl Obj {
    pub fn new() -> Self {
        Obj::with_capacity(256)
    }

    pub fn with_capacity(n: usize) -> Self {
        let mut buf = String::with_capacity(n);
        buf.push('{');
        Obj { buf, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.buf.push(',');
        }
        self.empty = false;
        push_str_literal(&mut self.buf, key);
        self.buf.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_str_literal(&mut self.buf, value);
        self
    }

    /// Writes the string when there is one, nothing otherwise.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.buf.push_str(if value { "true" } else { "false" });
        self
    }

    /// Writes already-serialised JSON (an object built by another `Obj`, say).
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.buf.push_str(json);
        self
    }

    /// Writes a value; `None` becomes JSON `null`, as CloudTrail writes absent parameters.
    pub fn value(mut self, key: &str, value: Option<&Value>) -> Self {
        self.key(key);
        match value {
            Some(v) => self.buf.push_str(&v.to_string()),
            None => self.buf.push_str("null"),
        }
        self
    }

    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_and_strings_are_escaped() {
        let inner = Obj::new().str("b", "x").finish();
        let text = Obj::new()
            .str("z", "a \"q\" \\ \u{1}")
            .bool("a", true)
            .raw("m", &inner)
            .value("n", None)
            .finish();
        assert_eq!(
            text,
            r#"{"z":"a \"q\" \\ \u0001","a":true,"m":{"b":"x"},"n":null}"#
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["z"], "a \"q\" \\ \u{1}");
    }
}
