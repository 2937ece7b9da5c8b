//! Turns the bytes of one delivered object into records.
//!
//! Accepted: gzip or plain; `{"Records":[...]}` as CloudTrail delivers, a bare JSON array, a
//! single record object, or JSON lines. A well-formed object is decoded in one pass
//! ([`decode_whole`]); any other is split into record texts borrowed from the buffer
//! ([`split_records`]) so that each one is decoded (and, if broken, rejected) on its own.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::record::Record;

/// Largest decompressed object accepted. CloudTrail objects are a few MB; anything near this
/// is a decompression bomb or not CloudTrail.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("gzip stream is corrupt or truncated: {0}")]
    Gzip(std::io::Error),
    #[error("decompressed size exceeds {} MiB", MAX_OBJECT_BYTES >> 20)]
    TooLarge,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error(
        "JSON, but not CloudTrail records (expected {{\"Records\":[...]}}, an array or JSON lines)"
    )]
    NotRecords,
}

/// Decompresses when the bytes start with the gzip magic, whatever the file is called.
pub fn decompress(bytes: Vec<u8>) -> Result<Vec<u8>, ReadError> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    gunzip_into(&bytes, &mut out)?;
    Ok(out)
}

/// Whether the bytes start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses gzip `bytes` into `out`, replacing what it held; `out`'s allocation is reused.
pub fn gunzip_into(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), ReadError> {
    if super::gunzip::single_member_into(bytes, MAX_OBJECT_BYTES, out) {
        return Ok(());
    }
    out.clear();
    out.reserve(bytes.len().saturating_mul(8));
    MultiGzDecoder::new(bytes)
        .take(MAX_OBJECT_BYTES + 1)
        .read_to_end(out)
        .map_err(ReadError::Gzip)?;
    if out.len() as u64 > MAX_OBJECT_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(())
}

/// The deepest nesting decoded in one pass. CloudTrail's records nest a dozen levels. The
/// limit keeps sonic-rs's recursion within the smallest thread stack that decodes (2 MiB): a
/// release build holds 16,000 levels in it, but an unoptimised build (the tests) overflows
/// below 128, because sonic-rs's parser is compiled at this crate's optimisation level. Deeper
/// objects take the record-by-record path, where serde_json refuses what nests past 128.
const MAX_FAST_NESTING: usize = if cfg!(debug_assertions) { 16 } else { 128 };

/// `{"Records":[...]}` decoded straight into records.
#[derive(Deserialize)]
struct DecodedEnvelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Record<'a>>,
}

/// Decodes every record of an object in one pass when the whole object is well formed: a
/// `Records` envelope or an array, every record valid. `None` otherwise, and the caller splits
/// the object with [`split_records`] and decodes record by record, counting each bad one.
///
/// Almost every object CloudTrail delivers takes this path, which reads each byte once: first
/// by the decoder that knows CloudTrail's envelope ([`super::envelope`]), and when that one
/// leaves the object alone, by the general decoder.
pub fn decode_whole(bytes: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut records = Vec::new();
    decode_whole_into(bytes, &mut records).then_some(records)
}

/// [`decode_whole`] into `records` (emptied first), reusing its allocation when the envelope
/// decoder takes the object; false, and `records` empty, when the object is to be split.
pub fn decode_whole_into<'a>(bytes: &'a [u8], records: &mut Vec<Record<'a>>) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        records.clear();
        return false;
    };
    if super::envelope::decode_into(text, records) {
        return true;
    }
    match decode_general(text) {
        Some(decoded) => {
            *records = decoded;
            true
        }
        None => false,
    }
}

/// The general one-pass decoder (sonic-rs through serde): any envelope member order, a bare
/// array. Public so that the fuzz tests hold the envelope decoder to it.
pub fn decode_general(text: &str) -> Option<Vec<Record<'_>>> {
    // sonic-rs skips unread members by recursion: a deeper object goes the careful way, where
    // serde_json's depth limit refuses its records one by one.
    if !super::structure::nesting_within(text.as_bytes(), MAX_FAST_NESTING) {
        return None;
    }
    let first = text.trim_start().as_bytes().first()?;
    match first {
        b'{' => sonic_rs::from_str::<DecodedEnvelope>(text)
            .ok()
            .map(|e| e.records),
        b'[' => sonic_rs::from_str::<Vec<Record>>(text).ok(),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

/// The record texts of one object. When the object breaks off part way (JSON lines with a bad
/// line, say), the records before the break are returned along with the error, so nothing
/// already read is lost.
pub struct Split<'a> {
    pub records: Vec<RecordText<'a>>,
    pub error: Option<ReadError>,
}

/// The JSON text of one record, borrowed from the object; decoding it is the caller's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordText<'a>(&'a str);

impl<'a> RecordText<'a> {
    pub fn get(&self) -> &'a str {
        self.0
    }
}

/// Splits decompressed bytes into record texts.
pub fn split_records(bytes: &[u8]) -> Split<'_> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            // Keep the valid prefix: JSON lines before the bad byte are still records.
            let valid = &bytes[..e.valid_up_to()];
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            let mut split = split_text(prefix);
            split.error = Some(ReadError::NotJson(format!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            )));
            return split;
        }
    };
    split_text(text)
}

fn split_text(text: &str) -> Split<'_> {
    // CloudTrail's own objects: framed by structure alone, each record decoded later.
    if let Some(texts) = super::structure::split_frame(text) {
        return Split {
            records: texts.into_iter().map(RecordText).collect(),
            error: None,
        };
    }
    let mut records = Vec::new();
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    let mut count = 0usize;
    loop {
        match values.next() {
            None => break,
            Some(Err(e)) => {
                return Split {
                    records,
                    error: Some(ReadError::NotJson(crate::cloudtrail::record::reason_of(&e))),
                }
            }
            Some(Ok(value)) => {
                count += 1;
                let raw = value.get();
                match raw.as_bytes().first() {
                    Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(raw) {
                        Ok(items) => records.extend(items.iter().map(|r| RecordText(r.get()))),
                        Err(_) => return not_records(records),
                    },
                    Some(b'{') => match serde_json::from_str::<Envelope>(raw) {
                        Ok(Envelope {
                            records: Some(items),
                        }) => records.extend(items.iter().map(|r| RecordText(r.get()))),
                        // A lone record, or one line of JSON lines.
                        Ok(Envelope { records: None }) => records.push(RecordText(raw)),
                        Err(_) => return not_records(records),
                    },
                    _ => return not_records(records),
                }
            }
        }
    }
    if count == 0 {
        return Split {
            records,
            error: Some(ReadError::NotJson("empty file".into())),
        };
    }
    Split {
        records,
        error: None,
    }
}

fn not_records(records: Vec<RecordText<'_>>) -> Split<'_> {
    Split {
        records,
        error: Some(ReadError::NotRecords),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const R1: &str =
        r#"{"eventTime":"2023-07-10T11:42:36Z","eventSource":"s3.amazonaws.com","eventName":"A"}"#;
    const R2: &str =
        r#"{"eventTime":"2023-07-10T11:42:37Z","eventSource":"s3.amazonaws.com","eventName":"B"}"#;

    fn names(bytes: &[u8]) -> (usize, bool) {
        let s = split_records(bytes);
        (s.records.len(), s.error.is_some())
    }

    #[test]
    fn all_shapes_yield_their_records() {
        assert_eq!(
            names(format!(r#"{{"Records":[{R1},{R2}]}}"#).as_bytes()),
            (2, false)
        );
        assert_eq!(names(format!("[{R1},{R2}]").as_bytes()), (2, false));
        assert_eq!(names(format!("{R1}\n{R2}\n").as_bytes()), (2, false));
        assert_eq!(names(R1.as_bytes()), (1, false));
    }

    #[test]
    fn a_bad_line_keeps_the_lines_before_it() {
        assert_eq!(names(format!("{R1}\n{{oops\n{R2}").as_bytes()), (1, true));
    }

    #[test]
    fn non_records_and_empty_files_are_errors() {
        assert_eq!(names(b"42"), (0, true));
        assert_eq!(names(b"   "), (0, true));
        assert_eq!(names(b"<html></html>"), (0, true));
    }

    #[test]
    fn nesting_up_to_the_limit_decodes_generally_on_a_small_stack_and_deeper_goes_record_by_record()
    {
        let object = |depth: usize| {
            format!(
                r#"{{"Records":[{{"eventTime":"2023-07-10T11:42:36Z","eventSource":"s3.amazonaws.com","eventName":"A","requestParameters":{}{}}}]}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        // The smallest stack a decoding thread has (Rust's default for spawned threads).
        let on_small_stack = |text: String| {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || decode_general(&text).map(|r| r.len()))
                .expect("a thread")
                .join()
                .expect("no stack overflow")
        };
        // The envelope, the array and the record open three more levels.
        assert_eq!(on_small_stack(object(MAX_FAST_NESTING - 3)), Some(1));
        assert_eq!(on_small_stack(object(MAX_FAST_NESTING - 2)), None);
        assert_eq!(on_small_stack(object(100_000)), None);
        // The envelope decoder skips without recursing, so it takes them all in one pass.
        for depth in [MAX_FAST_NESTING - 2, 100_000] {
            let text = object(depth);
            let records = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || decode_whole(text.as_bytes()).map(|r| r.len()))
                .expect("a thread")
                .join()
                .expect("no stack overflow");
            assert_eq!(records, Some(1));
        }
    }

    #[test]
    fn gzip_is_detected_by_magic_and_truncation_is_an_error() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(R1.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress(gz.clone()).unwrap(), R1.as_bytes());
        assert!(matches!(
            decompress(gz[..gz.len() / 2].to_vec()),
            Err(ReadError::Gzip(_))
        ));
        assert!(decompress(vec![0x1f, 0x8b, 1, 2, 3]).is_err());
    }
}
