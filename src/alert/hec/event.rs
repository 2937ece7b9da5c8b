//! Findings as HEC events, and events packed into requests.
//!
//! Each event is a JSON object: `event` is the finding itself (an object, not a string holding
//! JSON), `time` its first eventTime, and `fields` the few values worth indexing. A request is
//! events one after another, newline separated, as the collector's `/event` endpoint takes.

use std::ops::Range;

use serde::Serialize;
use serde_json::Value;

use crate::alert::Finding;

/// The event metadata a collector's config sets.
#[derive(Clone, Debug)]
pub struct EventMeta {
    pub index: Option<String>,
    pub host: Option<String>,
    pub source: String,
    pub sourcetype: String,
}

#[derive(Serialize)]
struct Envelope<'a, E: Serialize> {
    time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    source: &'a str,
    sourcetype: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    event: &'a E,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Fields<'a>>,
}

/// Indexed fields: what a SOC filters on before it reads the event. Values are strings, as
/// HEC requires of indexed fields.
#[derive(Serialize)]
struct Fields<'a> {
    finding_id: &'a str,
    account: &'a str,
    principal: &'a str,
    principal_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    level: &'static str,
    kind: &'static str,
}

impl EventMeta {
    /// One finding as one event, newline terminated.
    pub fn finding(&self, f: &Finding) -> Result<Vec<u8>, serde_json::Error> {
        let envelope = Envelope {
            time: f.first_seen.unix(),
            host: self.host.as_deref(),
            source: &self.source,
            sourcetype: &self.sourcetype,
            index: self.index.as_deref(),
            event: f,
            fields: Some(Fields {
                finding_id: &f.id,
                account: f.account.as_str(),
                principal: &f.principal.key,
                principal_type: f.principal.kind.name(),
                action: f.action.as_deref(),
                level: f.severity.level.name(),
                kind: f.kind.name(),
            }),
        };
        let mut line = serde_json::to_vec(&envelope)?;
        line.push(b'\n');
        Ok(line)
    }

    /// Any other event (the run summary), under `sourcetype`, stamped `time`.
    pub fn other(
        &self,
        sourcetype: &str,
        time: i64,
        event: &Value,
    ) -> Result<Vec<u8>, serde_json::Error> {
        let envelope = Envelope {
            time,
            host: self.host.as_deref(),
            source: &self.source,
            sourcetype,
            index: self.index.as_deref(),
            event,
            fields: None,
        };
        let mut line = serde_json::to_vec(&envelope)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// Splits encoded events into requests of at most `max_events` events and about `max_bytes`
/// bytes: a single event larger than `max_bytes` goes alone rather than not at all (the
/// collector's own limit, answered with 413, is the real one). Returns index ranges.
pub fn pack(sizes: &[usize], max_events: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_events || bytes + size > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::testing::finding;
    use crate::alert::Level;

    #[test]
    fn a_finding_is_an_object_event_with_indexed_fields() {
        let meta = EventMeta {
            index: Some("aws".into()),
            host: None,
            source: "trailhound".into(),
            sourcetype: "trailhound:finding".into(),
        };
        let f = finding(91, Level::Critical, "2024-03-01T10:31:00Z");
        let line = meta.finding(&f).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["time"], f.first_seen.unix());
        assert_eq!(v["index"], "aws");
        assert!(v.get("host").is_none());
        // The finding is an object, not a string of JSON: Splunk extracts its fields.
        assert_eq!(v["event"]["id"], f.id.as_str());
        let back: Finding = serde_json::from_value(v["event"].clone()).unwrap();
        assert_eq!(back, f);
        assert_eq!(v["fields"]["finding_id"], f.id.as_str());
        assert_eq!(v["fields"]["level"], "critical");
        assert_eq!(v["fields"]["account"], f.account.as_str());
        for (_, value) in v["fields"].as_object().unwrap() {
            assert!(value.is_string(), "indexed fields are strings: {value}");
        }
    }

    #[test]
    fn packing_respects_both_limits() {
        assert_eq!(pack(&[10; 5], 2, 1000), vec![0..2, 2..4, 4..5]);
        assert_eq!(pack(&[10, 10, 10], 100, 25), vec![0..2, 2..3]);
        // An event over the byte limit still goes, alone.
        assert_eq!(pack(&[5, 50, 5], 100, 20), vec![0..1, 1..2, 2..3]);
        assert!(pack(&[], 10, 10).is_empty());
    }
}
