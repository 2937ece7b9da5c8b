//! Folding CloudTrail objects into Activity rows: the per-object work every direct source
//! shares, whatever the bytes came from (a file, an S3 object).
//!
//! One object: decompress, decode its records (in one pass when the object is well formed,
//! record by record when it is not), drop eventIDs already seen in this
//! window, fold each record into its (principal, action, outcome) row, and count every record
//! that did not become activity. Workers each fold into their own [`Partial`]; [`merge`]
//! combines them at the end, so the only shared state is the eventID set.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use hashbrown::hash_map::{Entry, RawEntryMut};
use hashbrown::{DefaultHashBuilder, Equivalent, HashMap, HashSet};

use super::activity::{Activity, Samples, ScanReport};
use crate::cloudtrail::reader::{
    decode_whole_into, gunzip_into, is_gzip, split_records, RecordText,
};
use crate::cloudtrail::{is_instance_session, AccountId, Action, Outcome, Principal, Record};
use crate::detect::rules::RuleEngine;
use crate::window::Window;

/// What makes an Activity row distinct: principal key, eventSource, eventName and outcome.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowKey {
    principal: String,
    source: String,
    name: String,
    outcome: Outcome,
}

/// A [`RowKey`] borrowed from the record being folded. It hashes exactly as the owned key (a
/// `String` hashes as its `str`), so a record of a row seen before is folded without copying
/// its strings.
#[derive(Hash)]
struct RowKeyRef<'a> {
    principal: &'a str,
    source: &'a str,
    name: &'a str,
    outcome: Outcome,
}

impl Equivalent<RowKey> for RowKeyRef<'_> {
    fn equivalent(&self, key: &RowKey) -> bool {
        self.outcome == key.outcome
            && self.name == key.name
            && self.source == key.source
            && self.principal == key.principal
    }
}

impl RowKeyRef<'_> {
    fn to_owned_key(&self) -> RowKey {
        RowKey {
            principal: self.principal.to_string(),
            source: self.source.to_string(),
            name: self.name.to_string(),
            outcome: self.outcome,
        }
    }
}

/// What one worker has folded so far.
#[derive(Default)]
pub(crate) struct Partial {
    rows: HashMap<RowKey, Activity>,
    pub(crate) report: ScanReport,
    /// The text of records some rule's condition holds for.
    pub(crate) rule_records: Vec<String>,
    /// Buffers reused from one object to the next: the file as read, and its decompressed
    /// text. Never merged.
    pub(crate) file_buffer: Vec<u8>,
    json_buffer: Vec<u8>,
    /// The allocation of the last object's records, empty (see [`recycle`]).
    record_buffer: Vec<Record<'static>>,
}

/// An empty vector of records borrowing from another buffer, in the same allocation. Records
/// are some 650 bytes each: a fresh vector per object was a large allocation, and grew.
fn recycle<'b>(mut records: Vec<Record<'_>>) -> Vec<Record<'b>> {
    records.clear();
    // Collecting a vector's own items into a vector of a type of the same layout reuses its
    // allocation (std's in-place collection); there are no items to convert.
    records.into_iter().map(|_| unreachable!()).collect()
}

impl Partial {
    /// The rows, sorted by principal, action and outcome, the report, and the records kept
    /// for rules.
    pub(crate) fn finish(self) -> (Vec<Activity>, ScanReport, Vec<String>) {
        let mut rows: Vec<Activity> = self.rows.into_values().collect();
        rows.sort_by(|a, b| {
            (&a.principal.key, &a.action, a.outcome).cmp(&(&b.principal.key, &b.action, b.outcome))
        });
        (rows, self.report, self.rule_records)
    }

    /// Folds another worker's rows and counts into this one.
    pub(crate) fn absorb(&mut self, part: Partial) {
        self.report.merge(part.report);
        self.rule_records.extend(part.rule_records);
        for (k, row) in part.rows {
            match self.rows.entry(k) {
                Entry::Occupied(mut e) => e.get_mut().merge(row),
                Entry::Vacant(e) => {
                    e.insert(row);
                }
            }
        }
    }
}

/// Combines what several workers folded.
pub(crate) fn merge(parts: impl IntoIterator<Item = Partial>) -> Partial {
    let mut total = Partial::default();
    for part in parts {
        total.absorb(part);
    }
    total
}

/// What the workers folding one window share: the eventIDs seen so far (64-bit hashes, not
/// the ids, because a busy window holds millions of them; the hasher is seeded per window, so
/// a collision cannot be aimed), and the rules whose records they keep.
#[derive(Default)]
pub(crate) struct WindowShared {
    seen: Mutex<HashSet<u64>>,
    ids: DefaultHashBuilder,
    rules: Option<Arc<RuleEngine>>,
}

impl WindowShared {
    pub(crate) fn new(rules: Option<Arc<RuleEngine>>) -> Self {
        WindowShared {
            rules,
            ..WindowShared::default()
        }
    }

    fn event_key(&self, id: &str) -> u64 {
        self.ids.hash_one(id)
    }
}

/// The account a record belongs to, for objects whose name does not say.
pub(crate) fn record_account(r: &Record<'_>) -> Option<AccountId> {
    let from_identity = r.user_identity.0.as_ref().and_then(|u| u.account_id.get());
    r.recipient_account_id
        .get()
        .or(from_identity)
        .and_then(|a| AccountId::parse(a).ok())
}

/// One object to fold: where it came from (for the report) and whether CloudTrail named it.
pub(crate) struct ObjectRef<'a> {
    /// How the report names the object: a path or an `s3://` URL. Made into text only when
    /// the report needs it, which is rarely.
    pub shown: &'a dyn std::fmt::Display,
    /// A CloudTrail-named object was chosen by its delivery time and account, so all its
    /// records count. Other files are read whole: their records are kept only when they are
    /// of the account and their eventTime is in the window.
    pub named: bool,
}

/// Folds one object's bytes (as stored: gzip or plain) into `part`. Records before a break
/// in the object are kept; the break is reported under the object's name.
pub(crate) fn fold_object(
    object: ObjectRef<'_>,
    bytes: &[u8],
    account: &AccountId,
    window: &Window,
    shared: &WindowShared,
    part: &mut Partial,
) {
    part.report.objects_read += 1;
    part.report.bytes_read += bytes.len() as u64;
    if !is_gzip(bytes) {
        fold_text(object, bytes, account, window, shared, part);
        return;
    }
    let mut json = std::mem::take(&mut part.json_buffer);
    match gunzip_into(bytes, &mut json) {
        Ok(()) => fold_text(object, &json, account, window, shared, part),
        Err(e) => {
            part.report
                .objects_bad
                .insert(object.shown.to_string(), e.to_string());
        }
    }
    // The buffer is kept for the worker's next object, unless an outsized object grew it.
    if json.capacity() <= MAX_KEPT_BUFFER {
        part.json_buffer = json;
    }
}

/// The largest decompression buffer a worker keeps between objects (CloudTrail's objects are
/// rarely above a few MB).
const MAX_KEPT_BUFFER: usize = 64 << 20;

/// Folds one object's decompressed text into `part`.
fn fold_text(
    object: ObjectRef<'_>,
    bytes: &[u8],
    account: &AccountId,
    window: &Window,
    shared: &WindowShared,
    part: &mut Partial,
) {
    let shown = object.shown;
    // Well-formed objects are decoded in one pass; the others record by record, so one bad
    // record costs only itself. Record texts are found only when a rule may want them.
    let mut whole = recycle(std::mem::take(&mut part.record_buffer));
    let (parsed, texts) = if decode_whole_into(bytes, &mut whole) {
        part.report.records += whole.len() as u64;
        (whole, None)
    } else {
        let (records, texts) = split_and_decode(bytes, shown, part);
        (records, Some(texts))
    };
    // Deduplicate by eventID across the whole window: one lock per object, not per record.
    let keys: Vec<Option<u64>> = parsed
        .iter()
        .map(|r| r.event_id.get().map(|id| shared.event_key(id)))
        .collect();
    let fresh: Vec<bool> = match shared.seen.lock() {
        Ok(mut set) => keys
            .iter()
            .map(|k| k.is_none_or(|k| set.insert(k)))
            .collect(),
        Err(_) => vec![true; keys.len()],
    };
    let mut texts = RecordTexts { bytes, texts };
    for (n, (record, is_new)) in parsed.iter().zip(fresh).enumerate() {
        if !is_new {
            part.report.records_duplicate += 1;
            continue;
        }
        if !object.named {
            if record_account(record).as_ref() != Some(account) {
                part.report.records_other_account += 1;
                continue;
            }
            if !window.contains(record.event_time) {
                part.report.records_outside_window += 1;
                continue;
            }
        }
        if let Some(rules) = &shared.rules {
            if rules.may_want(&record.event_name) {
                if let Some(text) = texts.get(n) {
                    keep_for_rules(rules, text, part);
                }
            }
        }
        fold_record(record, account, part);
    }
    // Kept for the next object, unless an outsized object grew it.
    if parsed.capacity() * std::mem::size_of::<Record>() <= MAX_KEPT_BUFFER {
        part.record_buffer = recycle(parsed);
    }
}

/// Splits an object that did not decode whole and decodes its records one by one: records
/// before a break in the object are kept and the break is reported under the object's name;
/// each record that does not decode is counted by reason.
fn split_and_decode<'a>(
    bytes: &'a [u8],
    shown: &dyn std::fmt::Display,
    part: &mut Partial,
) -> (Vec<Record<'a>>, Vec<RecordText<'a>>) {
    let split = split_records(bytes);
    if let Some(e) = &split.error {
        let kept = split.records.len();
        part.report.objects_bad.insert(
            shown.to_string(),
            format!("{e} (kept the {kept} records before it)"),
        );
    }
    let mut records = Vec::with_capacity(split.records.len());
    let mut texts = Vec::with_capacity(split.records.len());
    for raw in split.records {
        part.report.records += 1;
        match Record::parse(raw.get()) {
            Ok(r) => {
                records.push(r);
                texts.push(raw);
            }
            Err(reason) => *part.report.records_bad.entry(reason).or_default() += 1,
        }
    }
    (records, texts)
}

/// The texts of an object's decoded records, found on first use: an object decoded whole is
/// split only when a rule may want one of its records.
struct RecordTexts<'a> {
    bytes: &'a [u8],
    texts: Option<Vec<RecordText<'a>>>,
}

impl<'a> RecordTexts<'a> {
    fn get(&mut self, n: usize) -> Option<&'a str> {
        if self.texts.is_none() {
            // The object decoded whole, so it splits without a bad record or a break, into
            // the same records in the same order.
            self.texts = Some(split_records(self.bytes).records);
        }
        self.texts.as_ref()?.get(n).map(RecordText::get)
    }
}

/// Keeps the record's text when a rule's condition holds for it. Only records whose
/// eventName some rule names (or all, when a rule names none) are decoded for the test.
fn keep_for_rules(rules: &RuleEngine, raw: &str, part: &mut Partial) {
    // The record parsed once already; as a generic value it parses again. The two parsers
    // differ at the edges (an escape like `\uZZZZ` in a member the first one skipped): such a
    // record is activity, but no rule can read it, and the report says so.
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(value) => {
            if rules.wants(&value) {
                part.rule_records.push(raw.to_string());
            }
        }
        Err(e) => {
            let reason = format!(
                "kept as activity, but unreadable for rules: {}",
                crate::cloudtrail::record::reason_of(&e)
            );
            *part.report.records_bad.entry(reason).or_default() += 1;
        }
    }
}

fn fold_record(r: &Record<'_>, account: &AccountId, part: &mut Partial) {
    let principal = match Principal::identify(r, account.as_str()) {
        Ok(p) => p,
        Err(why) => {
            *part
                .report
                .records_no_principal
                .entry(why.reason().to_string())
                .or_default() += 1;
            return;
        }
    };
    let outcome = Outcome::of(r.error_code.get());
    let key = RowKeyRef {
        principal: &principal.key,
        source: &r.event_source,
        name: &r.event_name,
        outcome,
    };
    let row = match part.rows.raw_entry_mut().from_key(&key) {
        RawEntryMut::Occupied(e) => e.into_mut(),
        RawEntryMut::Vacant(e) => {
            let row = Activity {
                action: Action::new(&r.event_source, &r.event_name),
                principal: principal.to_principal(),
                outcome,
                count: 0,
                first_time: r.event_time,
                last_time: r.event_time,
                regions: Samples::default(),
                source_ips: Samples::default(),
                user_agents: Samples::default(),
                error_codes: Samples::default(),
                event_ids: Samples::default(),
                read_only: None,
                logins_without_mfa: 0,
                instance_calls: 0,
            };
            e.insert(key.to_owned_key(), row).1
        }
    };
    row.count += 1;
    if r.user_identity
        .0
        .as_ref()
        .and_then(|id| id.arn.get())
        .is_some_and(is_instance_session)
    {
        row.instance_calls += 1;
    }
    if r.console_login_without_mfa() {
        row.logins_without_mfa += 1;
    }
    row.first_time = row.first_time.min(r.event_time);
    row.last_time = row.last_time.max(r.event_time);
    if let Some(v) = r.aws_region.get() {
        row.regions.add(v);
    }
    if let Some(v) = r.source_ip.get() {
        row.source_ips.add(v);
    }
    if let Some(v) = r.user_agent.get() {
        row.user_agents.add(v);
    }
    if let Some(v) = r.error_code.get() {
        row.error_codes.add(v);
    }
    if let Some(v) = r.event_id.get() {
        row.event_ids.add(v);
    }
    if let Some(ro) = r.read_only.0 {
        row.read_only = Some(row.read_only.unwrap_or(true) && ro);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycled_record_vectors_keep_their_allocation() {
        let text = String::from(
            r#"{"eventTime":"2024-03-01T10:00:00Z","eventSource":"s","eventName":"n"}"#,
        );
        let mut records: Vec<Record<'_>> = Vec::with_capacity(40);
        records.push(Record::parse(&text).expect("a record"));
        let capacity = records.capacity();
        let recycled: Vec<Record<'static>> = recycle(records);
        assert!(recycled.is_empty());
        assert_eq!(recycled.capacity(), capacity);
    }
}
