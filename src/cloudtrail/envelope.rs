//! CloudTrail's `{"Records":[...]}` decoded straight into [`Record`]s by a parser that knows
//! the record's shape.
//!
//! A general parser driven through serde pays for every member it meets: a visitor call, a
//! member name compared against each wanted name, a string copied into a `Cow` it owns. Here
//! member names are matched by length and bytes, the wanted strings are borrowed from the
//! buffer, and every other value (`requestParameters`, `responseElements`, `resources`...) is
//! stepped over by an iterative skip that checks the JSON grammar and builds nothing.
//!
//! This decoder never judges odd input. Whatever it does not plainly understand (any other
//! envelope, an escape in a member name, a member given twice, a required member missing or
//! of the wrong type, an escape it would have to decode in a way the general decoders might
//! not) makes it return `None`, and the object goes to the general decoders of
//! [`super::reader`], which decide and count exactly as they did before it existed. For the
//! objects it does return, the records are those the general decoder produces; the reader's
//! fuzz tests check that on mutated real records.

use std::borrow::Cow;

use super::record::{
    AdditionalEventData, Flag, Lenient, Member, OnBehalfOf, Record, SessionContext, SessionIssuer,
    Text, UserIdentity,
};
use super::time::Timestamp;

/// The records of a well-formed `{"Records":[...]}` object with nothing else in it, or `None`
/// when the general decoders must take the object.
pub fn decode(text: &str) -> Option<Vec<Record<'_>>> {
    let mut records = Vec::new();
    decode_into(text, &mut records).then_some(records)
}

/// [`decode`] into `records`, which is emptied first and keeps its allocation, so a worker
/// reading object after object allocates for records only when an object holds more than any
/// before it. False (and `records` empty) when the general decoders must take the object.
pub fn decode_into<'a>(text: &'a str, records: &mut Vec<Record<'a>>) -> bool {
    records.clear();
    let decoded = fill(text, records).is_some();
    if !decoded {
        records.clear();
    }
    decoded
}

fn fill<'a>(text: &'a str, records: &mut Vec<Record<'a>>) -> Option<()> {
    let mut p = Parser::new(text);
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.key()? != "Records" {
        return None;
    }
    p.eat(b'[')?;
    p.ws();
    // One record per 700 bytes of JSON, half the average of the generated corpus (1.4 KB),
    // so the vector seldom regrows (and moves every record) as it fills; a short guess only
    // means it grows.
    records.reserve(text.len() / 700 + 1);
    if p.peek() == Some(b']') {
        p.at += 1;
    } else {
        loop {
            // Filled where it lies: a record is some 650 bytes, and building it elsewhere to
            // move it in cost a copy of each.
            records.push(Record::unfilled());
            p.record(records.last_mut()?)?;
            p.ws();
            match p.bump()? {
                b',' => p.ws(),
                b']' => break,
                _ => return None,
            }
        }
    }
    p.ws();
    p.eat(b'}')?;
    p.ws();
    (p.at == p.bytes.len()).then_some(())
}

/// Marks member `bit` as seen; `None` when it was seen before (the general decoders refuse a
/// member given twice).
fn first_time(seen: &mut u32, bit: u32) -> Option<()> {
    let mask = 1u32 << bit;
    if *seen & mask != 0 {
        return None;
    }
    *seen |= mask;
    Some(())
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The open containers of the value being skipped (`true` for an object), kept between
    /// skips so that skipping allocates nothing.
    open: Vec<bool>,
    /// The last few `userIdentity` objects decoded in this object: where their bytes lie, and
    /// what they decoded to. See [`Parser::user_identity_seen`].
    identities: Vec<(std::ops::Range<usize>, UserIdentity<'a>)>,
}

/// How many `userIdentity` objects a parser remembers. The calls of one session carry the same
/// bytes (its ARN, access key, issuer, creation time); in a sample of 3,000 generated objects
/// 57% of records repeat one of the four identities before them in their object.
const IDENTITIES_KEPT: usize = 4;

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            at: 0,
            open: Vec::new(),
            identities: Vec::new(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.bump()? == want).then_some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// A member name and the `:` after it, leaving the parser at the value. Names with an
    /// escape are left to the general decoders.
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = string_stop(self.bytes, start)?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.ws();
        self.eat(b':')?;
        self.ws();
        // Both ends are ASCII quotes, so the slice falls on character boundaries.
        self.text.get(start..end)
    }

    /// The members of the object at the cursor, each name given to `member`, which must
    /// consume its value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let name = self.key()?;
            member(self, name)?;
            self.ws();
            match self.bump()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string at the cursor: borrowed when it has no escape, decoded otherwise.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let end = string_stop(self.bytes, start)?;
        match self.bytes[end] {
            b'"' => {
                self.at = end + 1;
                return self.text.get(start..end).map(Cow::Borrowed);
            }
            b'\\' => {}
            _ => return None,
        }
        self.escaped_string().map(Cow::Owned)
    }

    /// The rest of a string that holds an escape, decoded. Only escapes every JSON decoder
    /// reads alike are decoded; a `\u` that is not a whole character (a lone surrogate) is
    /// left to the general decoders.
    fn escaped_string(&mut self) -> Option<String> {
        let mut out = String::new();
        loop {
            let start = self.at;
            let end = string_stop(self.bytes, start)?;
            out.push_str(self.text.get(start..end)?);
            self.at = end + 1;
            match self.bytes[end] {
                b'"' => return Some(out),
                b'\\' => {}
                _ => return None,
            }
            let c = match self.bump()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let high = self.hex4()?;
                    if (0xDC00..0xE000).contains(&high) {
                        return None;
                    }
                    if (0xD800..0xDC00).contains(&high) {
                        self.eat(b'\\')?;
                        self.eat(b'u')?;
                        let low = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return None;
                        }
                        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                    } else {
                        char::from_u32(high)?
                    }
                }
                _ => return None,
            };
            out.push(c);
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + (d as char).to_digit(16)?;
        }
        self.at += 4;
        Some(v)
    }

    /// A context member: its text when it is a string, absent for any other value.
    fn text(&mut self) -> Option<Text<'a>> {
        if self.peek()? == b'"' {
            self.string().map(|s| Text(Some(s)))
        } else {
            self.skip_value().map(|()| Text(None))
        }
    }

    /// A member the record cannot do without: a string, or the general decoders decide.
    fn required(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? == b'"' {
            self.string()
        } else {
            None
        }
    }

    /// `readOnly`: a bool, or the text `true`/`false`; anything else reads as unknown.
    fn flag(&mut self) -> Option<Flag> {
        Some(Flag(match self.peek()? {
            b't' => {
                self.literal(b"true")?;
                Some(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Some(false)
            }
            b'"' => match self.string()?.as_ref() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => {
                self.skip_value()?;
                None
            }
        }))
    }

    /// An object filled in `slot` by `fill` when the value is one; any other value reads as
    /// absent.
    fn lenient<T: Default>(
        &mut self,
        slot: &mut Lenient<T>,
        fill: impl FnOnce(&mut Self, &mut T) -> Option<()>,
    ) -> Option<()> {
        if self.peek()? == b'{' {
            fill(self, slot.0.insert(T::default()))
        } else {
            slot.0 = None;
            self.skip_value()
        }
    }

    /// Fills `r`, an unfilled record.
    fn record(&mut self, r: &mut Record<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(|p, name| {
            let member = Member::of(name);
            if member == Member::Other {
                return p.skip_value();
            }
            first_time(&mut seen, member as u32)?;
            match member {
                Member::EventId => r.event_id = p.text()?,
                Member::EventTime => {
                    r.event_time = Timestamp::parse(&p.required()?).ok()?;
                }
                Member::EventSource => r.event_source = p.required()?,
                Member::EventName => r.event_name = p.required()?,
                Member::AwsRegion => r.aws_region = p.text()?,
                Member::SourceIp => r.source_ip = p.text()?,
                Member::UserAgent => r.user_agent = p.text()?,
                Member::ErrorCode => r.error_code = p.text()?,
                Member::ReadOnly => r.read_only = p.flag()?,
                Member::RecipientAccountId => r.recipient_account_id = p.text()?,
                Member::EventType => r.event_type = p.text()?,
                Member::UserIdentity => p.user_identity_seen(&mut r.user_identity)?,
                Member::AdditionalEventData => {
                    p.lenient(&mut r.additional_event_data, Self::additional_event_data)?
                }
                Member::Other => {}
            }
            Some(())
        })?;
        let required = [Member::EventTime, Member::EventSource, Member::EventName];
        required
            .iter()
            .all(|m| seen & (1 << *m as u32) != 0)
            .then_some(())
    }

    /// `userIdentity`, taken from an identity decoded before when the bytes at the cursor
    /// start with that identity's bytes: JSON read from the same bytes is the same value, and
    /// ends at the same place, so they need not be read again. Otherwise decoded, and kept.
    fn user_identity_seen(&mut self, slot: &mut Lenient<UserIdentity<'a>>) -> Option<()> {
        let rest = &self.bytes[self.at..];
        let seen = self
            .identities
            .iter()
            .rposition(|(span, _)| rest.starts_with(&self.bytes[span.clone()]));
        if let Some(i) = seen {
            let (span, identity) = &self.identities[i];
            slot.0 = Some(identity.clone());
            self.at += span.len();
            return Some(());
        }
        let start = self.at;
        self.lenient(slot, Self::user_identity)?;
        if let Some(identity) = &slot.0 {
            if self.identities.len() == IDENTITIES_KEPT {
                self.identities.remove(0);
            }
            self.identities.push((start..self.at, identity.clone()));
        }
        Some(())
    }

    fn user_identity(&mut self, u: &mut UserIdentity<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(|p, name| {
            let (bit, field) = match name {
                "type" => (0, &mut u.kind),
                "principalId" => (1, &mut u.principal_id),
                "arn" => (2, &mut u.arn),
                "accountId" => (3, &mut u.account_id),
                "accessKeyId" => (4, &mut u.access_key_id),
                "userName" => (5, &mut u.user_name),
                "invokedBy" => (6, &mut u.invoked_by),
                "identityProvider" => (7, &mut u.identity_provider),
                "sessionContext" => {
                    first_time(&mut seen, 8)?;
                    p.lenient(&mut u.session_context, Self::session_context)?;
                    return Some(());
                }
                "onBehalfOf" => {
                    first_time(&mut seen, 9)?;
                    p.lenient(&mut u.on_behalf_of, Self::on_behalf_of)?;
                    return Some(());
                }
                _ => return p.skip_value(),
            };
            first_time(&mut seen, bit)?;
            *field = p.text()?;
            Some(())
        })
    }

    fn session_context(&mut self, c: &mut SessionContext<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(|p, name| {
            if name != "sessionIssuer" {
                return p.skip_value();
            }
            first_time(&mut seen, 0)?;
            p.lenient(&mut c.session_issuer, Self::session_issuer)
        })
    }

    fn session_issuer(&mut self, s: &mut SessionIssuer<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(|p, name| {
            let (bit, field) = match name {
                "type" => (0, &mut s.kind),
                "principalId" => (1, &mut s.principal_id),
                "arn" => (2, &mut s.arn),
                "accountId" => (3, &mut s.account_id),
                "userName" => (4, &mut s.user_name),
                _ => return p.skip_value(),
            };
            first_time(&mut seen, bit)?;
            *field = p.text()?;
            Some(())
        })
    }

    fn on_behalf_of(&mut self, o: &mut OnBehalfOf<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(|p, name| {
            let (bit, field) = match name {
                "userId" => (0, &mut o.user_id),
                "identityStoreArn" => (1, &mut o.identity_store_arn),
                _ => return p.skip_value(),
            };
            first_time(&mut seen, bit)?;
            *field = p.text()?;
            Some(())
        })
    }

    fn additional_event_data(&mut self, a: &mut AdditionalEventData<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(|p, name| {
            if name != "MFAUsed" {
                return p.skip_value();
            }
            first_time(&mut seen, 0)?;
            a.mfa_used = p.text()?;
            Some(())
        })
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A JSON number, checked against the grammar and not converted.
    fn number(&mut self) -> Option<()> {
        let digits = |p: &mut Self| {
            let start = p.at;
            while let Some(b'0'..=b'9') = p.peek() {
                p.at += 1;
            }
            (p.at > start).then_some(())
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        if self.peek()? == b'0' {
            self.at += 1;
        } else {
            digits(self)?;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(())
    }

    /// Steps over a string, checking that it is closed, holds no raw control character and
    /// that every escape is well formed (what an escape decodes to is not looked at).
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let end = string_stop(self.bytes, self.at)?;
            self.at = end + 1;
            match self.bytes[end] {
                b'"' => return Some(()),
                b'\\' => {}
                _ => return None,
            }
            match self.bump()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    self.hex4()?;
                }
                _ => return None,
            }
        }
    }

    /// Steps over one value of any kind, checking its grammar, without recursion: a hostile
    /// value nested a million deep costs memory for its brackets, not stack.
    fn skip_value(&mut self) -> Option<()> {
        self.open.clear();
        loop {
            // At a value.
            match self.peek()? {
                b'"' => self.skip_string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                open @ (b'{' | b'[') => {
                    self.at += 1;
                    self.ws();
                    let object = open == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.at += 1;
                    } else {
                        self.open.push(object);
                        if object {
                            self.skip_name()?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // After a value: next element, the end of its container, or the end of the skip.
            loop {
                let Some(&object) = self.open.last() else {
                    return Some(());
                };
                self.ws();
                match self.bump()? {
                    b',' => {
                        self.ws();
                        if object {
                            self.skip_name()?;
                        }
                        break;
                    }
                    b'}' if object => {
                        self.open.pop();
                    }
                    b']' if !object => {
                        self.open.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// A member name inside a skipped object, and its `:`.
    fn skip_name(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.skip_string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }
}

/// The index of the first byte from `i` on that ends a run of plain string content: a quote,
/// a backslash, or a raw control character (which JSON forbids in strings). Sixteen bytes at
/// a time with SSE2 (every x86-64 has it), then eight at a time, then byte by byte at the end
/// of the buffer. The strings are short (names, ids, ARNs), so the wide test must be cheap to
/// start: one unaligned load and four compares, no setup outside the loop.
#[inline(always)]
fn string_stop(b: &[u8], mut i: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    while let Some(chunk) = b.get(i..i + 16) {
        let stops = sse2::stops(chunk);
        if stops != 0 {
            return Some(i + stops.trailing_zeros() as usize);
        }
        i += 16;
    }
    while let Some(chunk) = b.get(i..i + 8) {
        let stops = swar_stops(chunk);
        if stops != 0 {
            return Some(i + (stops.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|n| i + n)
}

/// The stops among eight bytes: the high bit of each stop byte set. Each test is exact per
/// byte (no carry crosses a byte), so the lowest flagged byte is the first stop.
fn swar_stops(chunk: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = !HIGH;
    // High bit of each byte set where the byte of `x` is zero.
    let zero = |x: u64| !(((x & LOW7) + LOW7) | x | LOW7);
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    let w = u64::from_le_bytes(word);
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    // Below 0x20: neither the high bit nor, after adding 0x60 to the low seven, bit 7.
    let control = !(((w & LOW7) + ONES * 0x60) | w) & HIGH;
    quote | backslash | control
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// The stops among sixteen bytes, one bit per byte, lowest bit first.
    #[inline(always)]
    pub(super) fn stops(chunk: &[u8]) -> u32 {
        assert!(chunk.len() >= 16);
        // SAFETY: SSE2 is part of the x86-64 baseline, and the load reads the sixteen bytes
        // just checked to be in `chunk`; `loadu` has no alignment requirement.
        unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            // Unsigned x <= 0x1f exactly when max(x, 0x1f) is 0x1f.
            let limit = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(x, limit), limit);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(text: &str) -> Option<Vec<Record<'_>>> {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "Records", borrow)]
            records: Vec<Record<'a>>,
        }
        serde_json::from_str::<Envelope>(text)
            .ok()
            .map(|e| e.records)
    }

    fn same(text: &str) {
        let fast = decode(text).unwrap_or_else(|| panic!("not decoded: {text}"));
        let slow = general(text).unwrap_or_else(|| panic!("general decoder refused: {text}"));
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{text}");
    }

    const TIME: &str = r#""eventTime":"2023-07-10T11:42:36Z","eventSource":"s3.amazonaws.com""#;

    #[test]
    fn records_decode_as_the_general_decoder_reads_them() {
        same(r#"{"Records":[]}"#);
        same(&format!(
            r#" {{ "Records" : [ {{ {TIME} , "eventName" : "ListBuckets",
                "eventID":"e1","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4",
                "userAgent":"aws-cli/2","errorCode":"AccessDenied","readOnly":true,
                "recipientAccountId":"111122223333","eventType":"AwsApiCall",
                "requestParameters":{{"a":[1,-2.5e3,true,false,null,{{}},[],"x\"]}}"]}},
                "userIdentity":{{"type":"AssumedRole","principalId":"AROA:s","arn":"a",
                  "accountId":"111122223333","accessKeyId":"ASIA","userName":"u",
                  "invokedBy":"i","identityProvider":"p","extra":{{"k":[[]]}},
                  "sessionContext":{{"attributes":{{"mfaAuthenticated":"false"}},
                    "sessionIssuer":{{"type":"Role","principalId":"AROA","arn":"r",
                      "accountId":"111122223333","userName":"n"}}}},
                  "onBehalfOf":{{"userId":"x","identityStoreArn":"y"}}}},
                "additionalEventData":{{"MFAUsed":"No","x":1}}
              }} , {{ {TIME},"eventName":"B"}} ] }} "#
        ));
    }

    #[test]
    fn repeated_identities_read_as_the_general_decoder_reads_them() {
        let alice =
            r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","userName":"al\u0069ce"}"#;
        let role =
            r#"{"type":"AssumedRole","arn":"r","sessionContext":{"sessionIssuer":{"arn":"i"}}}"#;
        // The same identity again, one that differs only in its last member, one that differs
        // in its first byte, and more distinct identities than are remembered.
        let longer = r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","userName":"bob"}"#;
        let identities = [
            alice,
            role,
            alice,
            alice,
            longer,
            role,
            "[]",
            "null",
            alice,
            "{}",
            "{ }",
            r#"{"a":1}"#,
            r#"{"b":2}"#,
            role,
            alice,
            role,
        ];
        let records: Vec<String> = identities
            .iter()
            .map(|u| format!(r#"{{{TIME},"eventName":"n","userIdentity":{u}}}"#))
            .collect();
        same(&format!(r#"{{"Records":[{}]}}"#, records.join(",")));
    }

    #[test]
    fn escapes_and_odd_types_read_as_the_general_decoder_reads_them() {
        same(&format!(
            r#"{{"Records":[{{{TIME},"eventName":"List\u0042uckets\n\"\\\/\ud83d\ude00",
                "userAgent":42,"sourceIPAddress":{{"a":1}},"errorCode":null,"eventID":[1],
                "readOnly":"true","userIdentity":{{"type":"IAMUser","sessionContext":[]}},
                "additionalEventData":"text"}}]}}"#
        ));
        same(&format!(
            r#"{{"Records":[{{{TIME},"eventName":"x","readOnly":"yes","userIdentity":null}}]}}"#
        ));
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_decoders() {
        for text in [
            // Other envelopes and framing.
            format!(r#"[{{{TIME},"eventName":"x"}}]"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x"}}],"more":1}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x"}}]}} x"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x"}},]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x"}}"#),
            // Required members missing or not strings; a bad time.
            format!(r#"{{"Records":[{{{TIME}}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":1}}]}}"#),
            r#"{"Records":[{"eventTime":"yesterday","eventSource":"s","eventName":"n"}]}"#
                .to_string(),
            // A member twice, at any level.
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","eventName":"y"}}]}}"#),
            format!(
                r#"{{"Records":[{{{TIME},"eventName":"x","userIdentity":{{"arn":"a","arn":"b"}}}}]}}"#
            ),
            // Escapes in names, lone surrogates, bad escapes, raw control characters.
            format!(r#"{{"Records":[{{{TIME},"event\u004eame":"x"}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"\ud800"}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":"\uZZZZ"}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":"\q"}}]}}"#),
            format!("{{\"Records\":[{{{TIME},\"eventName\":\"a\tb\"}}]}}"),
            // Broken grammar inside a skipped member.
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":{{"a" 1}}}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":[1 2]}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":[1,]}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":{{"a":1]}}}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":01}}]}}"#),
            format!(r#"{{"Records":[{{{TIME},"eventName":"x","k":tru}}]}}"#),
            // A record that is not an object.
            r#"{"Records":[1]}"#.to_string(),
        ] {
            assert!(decode(&text).is_none(), "{text}");
        }
    }

    #[test]
    fn string_stops_are_found_exactly_at_every_offset() {
        // Every byte value, in plain runs of every length, so each test meets every lane.
        let mut bytes = Vec::new();
        for stop in 0..=255u8 {
            for run in 0..19 {
                bytes.extend(std::iter::repeat_n(b'a' ^ (run as u8 & 0x1f), run));
                bytes.push(stop);
            }
        }
        bytes.extend_from_slice(&[0x80, 0xff, 0x7f, 0x20, 0x9f, 0xdc, 0xa2]);
        let naive = |i: usize| {
            bytes[i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .map(|n| i + n)
        };
        for i in 0..bytes.len() {
            assert_eq!(string_stop(&bytes, i), naive(i), "from {i}");
            // The eight-byte test alone, which on x86-64 only meets a buffer's last bytes.
            if let Some(chunk) = bytes.get(i..i + 8) {
                let stops = swar_stops(chunk);
                let first = (stops != 0).then(|| i + (stops.trailing_zeros() / 8) as usize);
                assert_eq!(first, naive(i).filter(|&n| n < i + 8), "eight from {i}");
            }
        }
    }

    #[test]
    fn a_skipped_value_nested_a_million_deep_costs_no_stack() {
        let n = 1_000_000;
        let text = format!(
            r#"{{"Records":[{{{TIME},"eventName":"x","k":{}{}}}]}}"#,
            "[".repeat(n),
            "]".repeat(n)
        );
        let records = decode(&text).expect("decoded");
        assert_eq!(records[0].event_name, "x");
    }
}
