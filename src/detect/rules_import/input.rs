//! Reading the rule items: a JSON array, one item, items one after another (JSON lines, or
//! pretty-printed objects as people paste them), `aws dynamodb scan` output (`{"Items": [...]}`)
//! and the DynamoDB attribute-value form of each item (`{"RuleId": {"S": "..."}}`).
//!
//! One unreadable item does not stop the others: reading resumes at the next line that opens an
//! object at the broken item's indentation, and the lines passed over are reported.

use serde_json::{Map, Value};

use super::{ImportError, ImportFailure};

/// One item of the input, or the report of one that could not be read.
pub(super) enum Piece {
    Item {
        /// "item 2 (line 20)": where a person finds it.
        label: String,
        value: Value,
    },
    Broken(ImportFailure),
}

/// The item attributes of the Elasticsearch rule system, used to say which one a syntax
/// error falls in.
const ATTRIBUTES: &[&str] = &[
    "RuleId",
    "RuleType",
    "RunScheduleInMinutes",
    "AlertPeriodMinutes",
    "AlertMinimumEventCount",
    "AlertText",
    "Description",
    "ES_Index",
    "LastAggResult",
    "LastRun",
    "Query",
];

pub(super) fn read(text: &str) -> Result<Vec<Piece>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        text,
        pos: 0,
        line_cursor: (0, 1),
        ordinal: 0,
        pieces: Vec::new(),
    };
    reader.skip_ws();
    match text.as_bytes().get(reader.pos) {
        None => Err(ImportError::Empty),
        Some(b'[') => {
            reader.pos += 1;
            reader.array();
            Ok(reader.pieces)
        }
        Some(b'{') => {
            reader.sequence();
            Ok(reader.pieces)
        }
        Some(_) => {
            let (line, column) = line_col(text, reader.pos);
            Err(ImportError::NotJson {
                line,
                column,
                message: "expected `[` or `{`".into(),
                excerpt: excerpt(text, reader.pos),
            })
        }
    }
}

/// Where reading stands after one item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Parsed,
    /// The item was broken; reading resumes at the next item.
    Resumed,
    Stop,
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// (offset, line there): where the last line lookup ended, so that numbering the items of
    /// a long input stays linear.
    line_cursor: (usize, usize),
    ordinal: usize,
    pieces: Vec<Piece>,
}

impl Reader<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The 1-based line of `at`, counting on from the previous lookup when it lies ahead.
    fn line_of(&mut self, at: usize) -> usize {
        let (from, line) = self.line_cursor;
        let line = if at >= from {
            line + self.text.as_bytes()[from..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        } else {
            line_col(self.text, at).0
        };
        self.line_cursor = (at, line);
        line
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Items separated by whitespace.
    fn sequence(&mut self) {
        loop {
            self.skip_ws();
            if self.pos >= self.text.len() {
                return;
            }
            if self.item() == Next::Stop {
                return;
            }
        }
    }

    /// The elements of an array whose `[` has been read.
    fn array(&mut self) {
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.pos < self.text.len() {
                        let from = line_col(self.text, self.pos).0;
                        self.broken_rest(from, "text after the closing `]` was not read");
                    }
                    return;
                }
                None => {
                    let line = line_col(self.text, self.pos).0;
                    self.broken_rest(line, "the array is never closed with `]`");
                    return;
                }
                Some(_) => {}
            }
            match self.item() {
                Next::Stop => return,
                // Already at the next item's `{`.
                Next::Resumed => continue,
                Next::Parsed => {}
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') | None => {}
                Some(_) => {
                    let start = self.pos;
                    let (line, column) = line_col(self.text, start);
                    let reason = format!(
                        "expected `,` or `]` after item {} at line {line} column {column}, near `{}`",
                        self.ordinal,
                        excerpt(self.text, start)
                    );
                    if !self.resync(start, start, None, reason) {
                        return;
                    }
                }
            }
        }
    }

    /// Reads one value at `pos`.
    fn item(&mut self) -> Next {
        let start = self.pos;
        self.ordinal += 1;
        let slice = &self.text[start..];
        let mut stream = serde_json::Deserializer::from_str(slice).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                self.pos = start + stream.byte_offset();
                let line = self.line_of(start);
                self.push(value, line);
                Next::Parsed
            }
            Some(Err(e)) => {
                let at = if e.classify() == serde_json::error::Category::Eof {
                    self.text.len()
                } else {
                    start + offset_of(slice, e.line(), e.column())
                };
                let (line, column) = line_col(self.text, at);
                let mut reason = format!(
                    "item {} is not valid JSON: line {line} column {column}: {} near `{}`",
                    self.ordinal,
                    json_message(&e),
                    excerpt(self.text, at)
                );
                let attribute = attribute_before(&self.text[start..at]);
                if attribute == Some("Query") {
                    reason.push_str("; the Query attribute must be one JSON string holding the query: escape its quotes and line breaks (`\\\"`, `\\n`), as `jq -Rs .` prints a file");
                }
                if self.resync(start, at, attribute, reason) {
                    Next::Resumed
                } else {
                    Next::Stop
                }
            }
            None => Next::Stop,
        }
    }

    /// Reports the item from `start` as broken and moves to the next line that opens an object
    /// at the item's indentation, after `error_at`. False when there is none.
    fn resync(
        &mut self,
        start: usize,
        error_at: usize,
        attribute: Option<&str>,
        reason: String,
    ) -> bool {
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let indent = &self.text[line_start..start];
        let first_line = line_col(self.text, start).0;
        let (error_line, error_column) = line_col(self.text, error_at);
        let next = self.text[error_at..]
            .match_indices('\n')
            .map(|(i, _)| error_at + i + 1)
            .find(|&l| {
                self.text[l..]
                    .strip_prefix(indent)
                    .is_some_and(|rest| rest.starts_with('{'))
            });
        let last_line = match next {
            Some(l) => line_col(self.text, l).0 - 1,
            None => line_col(self.text, self.text.len()).0,
        };
        let rule_id = salvage_rule_id(&self.text[start..next.unwrap_or(self.text.len())]);
        let mut position = format!("input line {error_line} column {error_column}");
        if let Some(a) = attribute {
            position.push_str(&format!(", in {a}"));
        }
        self.pieces.push(Piece::Broken(ImportFailure {
            rule_id: rule_id.unwrap_or_else(|| format!("item {}", self.ordinal)),
            position,
            reason: format!("{reason}; lines {first_line}-{last_line} were skipped"),
        }));
        match next {
            Some(l) => {
                self.pos = l + indent.len();
                true
            }
            None => false,
        }
    }

    fn broken_rest(&mut self, from_line: usize, what: &str) {
        let last = line_col(self.text, self.text.len()).0;
        self.pieces.push(Piece::Broken(ImportFailure {
            rule_id: "(input)".into(),
            position: format!("input line {from_line}"),
            reason: format!("{what}; lines {from_line}-{last} were not read"),
        }));
    }

    /// An item, or each item of an `aws dynamodb scan`/`get-item` answer.
    fn push(&mut self, value: Value, line: usize) {
        let items = match value {
            Value::Object(mut map) if !map.contains_key("RuleId") => {
                match (map.remove("Items"), map.remove("Item")) {
                    (Some(Value::Array(items)), _) => items,
                    (_, Some(item @ Value::Object(_))) => vec![item],
                    (items, item) => {
                        // Not a DynamoDB answer: an item without RuleId, reported as such.
                        map.extend(items.map(|v| ("Items".to_string(), v)));
                        map.extend(item.map(|v| ("Item".to_string(), v)));
                        self.pieces.push(Piece::Item {
                            label: format!("item {} (line {line})", self.ordinal),
                            value: Value::Object(map),
                        });
                        return;
                    }
                }
            }
            value => {
                self.pieces.push(Piece::Item {
                    label: format!("item {} (line {line})", self.ordinal),
                    value,
                });
                return;
            }
        };
        if items.is_empty() {
            self.ordinal -= 1;
            return;
        }
        let first = self.ordinal;
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.ordinal += 1;
            }
            self.pieces.push(Piece::Item {
                label: format!("item {} (Items[{i}], line {line})", first + i),
                value: item,
            });
        }
    }
}

/// The attribute whose key comes last before the error: the one being read when it broke.
fn attribute_before(text: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .filter_map(|a| text.rfind(&format!("\"{a}\"")).map(|i| (i, *a)))
        .max()
        .map(|(_, a)| a)
}

/// The RuleId of an item too broken to parse, found by its text, to name it in the report.
fn salvage_rule_id(text: &str) -> Option<String> {
    let at = text.find("\"RuleId\"")? + "\"RuleId\"".len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    // The DynamoDB form wraps it: {"S": "..."}.
    let rest = match rest.strip_prefix('{') {
        Some(inner) => inner
            .trim_start()
            .strip_prefix("\"S\"")?
            .trim_start()
            .strip_prefix(':')?
            .trim_start(),
        None => rest,
    };
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    stream.next()?.ok()
}

/// The plain form of an item: DynamoDB attribute values (`{"S": ..}`, `{"N": ..}`, `{"M": ..}`)
/// are unwrapped; a plain item is returned as it is.
pub(super) fn plain_item(value: Value) -> Result<Value, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "expected an object with RuleId, Query, ..., got {}",
            kind(&value)
        ));
    };
    if !is_dynamodb(&map) {
        return Ok(Value::Object(map));
    }
    let mut out = Map::new();
    for (k, v) in map {
        let plain = attribute(&v, &k)?;
        out.insert(k, plain);
    }
    Ok(Value::Object(out))
}

const TYPES: &[&str] = &["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

/// Every attribute is a one-key object naming a DynamoDB type.
fn is_dynamodb(map: &Map<String, Value>) -> bool {
    !map.is_empty()
        && map.values().all(|v| match v {
            Value::Object(o) => o.len() == 1 && o.keys().all(|k| TYPES.contains(&k.as_str())),
            _ => false,
        })
}

/// One DynamoDB attribute value as plain JSON. serde_json has already bounded the nesting.
fn attribute(v: &Value, path: &str) -> Result<Value, String> {
    let bad = |what: &str| Err(format!("attribute `{path}`: {what}"));
    let Some((ty, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return bad("expected a DynamoDB attribute value like {\"S\": \"...\"}");
    };
    match (ty.as_str(), inner) {
        ("S" | "B", Value::String(_)) | ("BOOL", Value::Bool(_)) => Ok(inner.clone()),
        ("NULL", _) => Ok(Value::Null),
        ("N", Value::String(n)) => {
            number(n).ok_or_else(|| format!("attribute `{path}`: `{}` is not a number", cut(n, 40)))
        }
        ("SS" | "BS", Value::Array(items)) if items.iter().all(Value::is_string) => {
            Ok(inner.clone())
        }
        ("NS", Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().and_then(number).ok_or_else(|| {
                    format!("attribute `{path}`: NS holds a value that is not a number")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        ("M", Value::Object(m)) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), attribute(v, &format!("{path}.{k}"))?);
            }
            Ok(Value::Object(out))
        }
        ("L", Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| attribute(v, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (ty, _) => bad(&format!("a `{ty}` value of the wrong JSON type")),
    }
}

fn number(n: &str) -> Option<Value> {
    let n = n.trim();
    if let Ok(i) = n.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Ok(u) = n.parse::<u64>() {
        return Some(Value::from(u));
    }
    n.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's message without its " at line L column C" tail (we say where ourselves).
pub(super) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&tail).unwrap_or(&full).to_string()
}

/// The byte offset of serde_json's (line, column): line 1-based, column the 1-based byte of
/// the offending character, 0 when it was the line break ending the previous line.
pub(super) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let at = if column == 0 {
        line_start.saturating_sub(1)
    } else {
        line_start.saturating_add(column - 1).min(text.len())
    };
    floor_char_boundary(text, at)
}

/// 1-based line and column (in bytes, as serde_json counts) of a byte offset.
pub(super) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = floor_char_boundary(text, at.min(text.len()));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A few characters either side of `at`, on one line, with `<HERE>` at the spot.
pub(super) fn excerpt(text: &str, at: usize) -> String {
    const BEFORE: usize = 30;
    const AFTER: usize = 20;
    let at = floor_char_boundary(text, at);
    let before: Vec<char> = text[..at].chars().rev().take(BEFORE + 1).collect();
    let after: Vec<char> = text[at..].chars().take(AFTER + 1).collect();
    let mut out = String::new();
    if before.len() > BEFORE {
        out.push_str("...");
    }
    for c in before.iter().take(BEFORE).rev() {
        visible(&mut out, *c);
    }
    out.push_str("<HERE>");
    for c in after.iter().take(AFTER) {
        visible(&mut out, *c);
    }
    if after.len() > AFTER {
        out.push_str("...");
    }
    out
}

fn visible(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// At most `max` characters of `s`, with `...` when cut.
pub(super) fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// One of the item attributes the Elasticsearch rule system defined.
pub(super) fn is_attribute(name: &str) -> bool {
    ATTRIBUTES.contains(&name)
}
