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
