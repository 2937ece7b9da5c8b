//! Finds the records of a delivered object by its structure alone, without decoding them.
//!
//! A CloudTrail object is `{"Records":[{...},{...}]}`. Splitting it with a full JSON parser
//! decodes every byte twice: once to find where each record ends, once to read the record.
//! Here the first pass only follows strings (jumping from quote to quote with `memchr`) and
//! brackets, which is several times faster; each record is then validated when it is decoded.
//!
//! The splitter answers only for objects whose frame it can check completely: the envelope
//! with `Records` as its only key, or a bare array, of objects, with balanced and matching
//! brackets, closed strings and nothing after the end. For anything else it returns `None` and
//! the caller splits with the JSON parser, which names the error.

/// The record texts of `text` when it is a well-framed envelope or array of objects.
pub fn split_frame(text: &str) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    match b.get(i)? {
        b'{' => {
            i = skip_ws(b, i + 1);
            i = expect(b, i, b"\"Records\"")?;
            i = skip_ws(b, i);
            i = expect(b, i, b":")?;
            i = skip_ws(b, i);
            let (records, after) = objects_of_array(text, i)?;
            i = skip_ws(b, after);
            i = expect(b, i, b"}")?;
            (skip_ws(b, i) == b.len()).then_some(records)
        }
        b'[' => {
            let (records, after) = objects_of_array(text, i)?;
            (skip_ws(b, after) == b.len()).then_some(records)
        }
        _ => None,
    }
}

/// Whether no value in `b` nests deeper than `limit` (brackets inside strings do not count).
///
/// A parser that skips values by recursion, as sonic-rs does for members it does not decode,
/// overflows its stack on a hostile object of a hundred thousand `[`; this is asked first.
/// Depth cannot exceed the number of opening brackets, so most objects are answered by one
/// vectorised count, and only those with more than `limit` brackets are followed string by
/// string.
pub fn nesting_within(b: &[u8], limit: usize) -> bool {
    if b.len() <= limit {
        return true;
    }
    if opening_brackets(b) <= limit {
        return true;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => match end_of_string(b, i + 1) {
                Some(end) => {
                    i = end;
                    continue;
                }
                // An unclosed string: nothing after it nests.
                None => return true,
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    true
}

/// How many bytes are `[` or `{`, eight at a time: they differ only in bit 0x20, so each byte
/// is set to 0x7b-or-not with one OR, and the bytes equal to it are found with the exact
/// zero-byte test (no false matches from borrows), then counted.
fn opening_brackets(b: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    let mut n = 0usize;
    for w in words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let x = (u64::from_le_bytes(word) | 0x2020_2020_2020_2020) ^ 0x7b7b_7b7b_7b7b_7b7b;
        let zero = !(((x & LOW7) + LOW7) | x | LOW7);
        n += zero.count_ones() as usize;
    }
    n + tail.iter().filter(|&&c| c | 0x20 == b'{').count()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

fn expect(b: &[u8], i: usize, what: &[u8]) -> Option<usize> {
    b.get(i..i + what.len())
        .filter(|s| *s == what)
        .map(|_| i + what.len())
}

/// The objects of the array opening at `start`, and the index after its closing bracket.
fn objects_of_array(text: &str, start: usize) -> Option<(Vec<&str>, usize)> {
    let b = text.as_bytes();
    let mut i = expect(b, start, b"[")?;
    i = skip_ws(b, i);
    let mut records = Vec::new();
    if b.get(i) == Some(&b']') {
        return Some((records, i + 1));
    }
    let mut stack = Vec::with_capacity(16);
    loop {
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let end = end_of_value(b, i, &mut stack)?;
        // Both ends are ASCII brackets, so the slice falls on character boundaries.
        records.push(text.get(i..end)?);
        i = skip_ws(b, end);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b']' => return Some((records, i + 1)),
            _ => return None,
        }
    }
}

/// The index after the object or array opening at `start`. Strings are jumped over; brackets
/// must match. Nothing else is checked: the record's decoder does that.
fn end_of_value(b: &[u8], start: usize, stack: &mut Vec<u8>) -> Option<usize> {
    stack.clear();
    let mut i = start;
    loop {
        match *b.get(i)? {
            b'"' => {
                i = end_of_string(b, i + 1)?;
                continue;
            }
            open @ (b'{' | b'[') => stack.push(open),
            close @ (b'}' | b']') => {
                let wanted = if close == b'}' { b'{' } else { b'[' };
                if stack.pop()? != wanted {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
        if stack.is_empty() {
            return Some(i);
        }
    }
}

/// The index after the closing quote of the string whose content starts at `i`.
fn end_of_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some(i + 1);
        }
        // An escape: the next byte is never the string's end.
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_and_arrays_split_into_their_objects() {
        let r1 = r#"{"eventName":"A","requestParameters":{"k":["}",{"x":"\"]"}]}}"#;
        let r2 = r#"{"eventName":"B\\","n":[1,2,{"a":null}]}"#;
        let env = format!("{{ \"Records\" : [ {r1} ,\n{r2} ] }}\n");
        assert_eq!(split_frame(&env), Some(vec![r1, r2]));
        assert_eq!(split_frame(&format!("[{r1},{r2}]")), Some(vec![r1, r2]));
        assert_eq!(split_frame(r#"{"Records":[]}"#), Some(vec![]));
        assert_eq!(split_frame("[ ]"), Some(vec![]));
    }

    #[test]
    fn opening_brackets_are_counted_exactly() {
        let text = b"[{\"a\":[1,{}],\"k\":\"{[\"}]\x7b\x5b\xfb\xdb;{";
        let slow = text.iter().filter(|&&c| c == b'[' || c == b'{').count();
        for start in 0..8 {
            let part = &text[start..];
            let slow_part = part.iter().filter(|&&c| c == b'[' || c == b'{').count();
            assert_eq!(opening_brackets(part), slow_part);
        }
        assert_eq!(opening_brackets(text), slow);
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        let deep = |n: usize| format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(nesting_within(deep(10).as_bytes(), 64));
        assert!(!nesting_within(deep(100).as_bytes(), 64));
        // Brackets in strings, however many, are not nesting.
        let quoted = format!("{{\"a\":\"{}\",\"b\":[[1]]}}", "[{".repeat(500));
        assert!(nesting_within(quoted.as_bytes(), 64));
        // Closing brackets in a string do not hide the depth after them.
        let hidden = format!(
            "{{\"a\":\"{}\",\"b\":{}}}",
            "]".repeat(500),
            "[".repeat(100)
        );
        assert!(!nesting_within(hidden.as_bytes(), 64));
    }

    #[test]
    fn anything_it_cannot_frame_is_left_to_the_parser() {
        for text in [
            // Truncated, in a string and between records.
            r#"{"Records":[{"a":"b"#,
            r#"{"Records":[{"a":"b"},"#,
            r#"{"Records":[{"a":"b"}"#,
            // Mismatched or unbalanced brackets.
            r#"{"Records":[{"a":[}]}"#,
            r#"{"Records":[{"a":{]}]}"#,
            r#"{"Records":[{"a":1}}]}"#,
            // Something after the end, or another key.
            r#"{"Records":[{"a":1}]} {"#,
            r#"{"Records":[{"a":1}],"more":1}"#,
            r#"{"Other":[{"a":1}]}"#,
            // Elements that are not objects; a lone record; JSON lines; not JSON.
            r#"{"Records":[1,2]}"#,
            r#"[{"a":1} {"b":2}]"#,
            r#"{"eventName":"A"}"#,
            "{\"a\":1}\n{\"b\":2}\n",
            "",
            "<html>",
            // An escape at the very end.
            "[{\"a\":\"\\",
        ] {
            assert_eq!(split_frame(text), None, "{text}");
        }
    }
}
