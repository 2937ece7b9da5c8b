//! The table's vocabulary: attribute names, how keys are spelled, and reading typed values
//! back out of items. Every key of the single-table design is built here and nowhere else.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::baseline::{PairKey, StoreError};
use crate::cloudtrail::{AccountId, Timestamp};

/// One stored item, as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
/// The TTL attribute (epoch seconds) on pair items.
pub const EXPIRES_AT: &str = "expires_at";
pub(super) const PRINCIPAL: &str = "principal";
pub(super) const ACTION: &str = "action";
pub(super) const OUTCOME: &str = "outcome";
pub(super) const FIRST_SEEN: &str = "first_seen";
pub(super) const LAST_SEEN: &str = "last_seen";
pub(super) const COUNT: &str = "count";
pub(super) const DAYS: &str = "days";
pub(super) const KIND: &str = "kind";
pub(super) const WATERMARK: &str = "watermark";
pub(super) const PENDING_END: &str = "pending_end";
pub(super) const SINCE: &str = "since";
pub(super) const ID: &str = "id";
pub(super) const JSON: &str = "json";
pub(super) const STAGED_AT: &str = "staged_at";
pub(super) const ACCOUNT: &str = "account";
pub(super) const LEVEL: &str = "level";
pub(super) const SCORE: &str = "score";
pub(super) const SINK: &str = "sink";
pub(super) const DELIVERED_AT: &str = "delivered_at";
pub(super) const RULE: &str = "rule";
pub(super) const STATE: &str = "state";
pub(super) const OWNER: &str = "owner";
pub(super) const UNTIL: &str = "until";
pub(super) const COMMIT_OWNER: &str = "commit_owner";
pub(super) const COMMIT_UNTIL: &str = "commit_until";

/// The sort key of an account's cursor item, of a finding's own item, and of a sink's
/// delivery turn.
pub(super) const CURSOR_SK: &str = "C";
pub(super) const FINDING_SK: &str = "F";
pub(super) const TURN_SK: &str = "T";

/// DynamoDB's limits on key sizes, in bytes.
const MAX_PARTITION_KEY: usize = 2048;
const MAX_SORT_KEY: usize = 1024;

/// `#` separates the parts of a key, so a part's own `#` (and the escape character `%`) are
/// escaped: ("a#b", "c") and ("a", "b#c") must not meet in one key.
fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

/// `tag#part#part...`, or `tag~<sha256>` when that would exceed `max` bytes (an IAM path can
/// make an ARN long). The `~` keeps hashed keys apart from spelled-out ones; the item carries
/// its parts as attributes either way, so nothing is ever parsed back out of a key.
fn compose(tag: &str, parts: &[&str], max: usize) -> String {
    let mut key = String::from(tag);
    for part in parts {
        key.push('#');
        key.push_str(&escape(part));
    }
    if key.len() <= max {
        return key;
    }
    format!("{tag}~{}", sha256_hex(&key))
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The partition of everything one account owns: pairs, principals and its cursor.
pub(super) fn account_pk(account: &AccountId) -> String {
    compose("A", &[account.as_str()], MAX_PARTITION_KEY)
}

pub(super) fn pair_sk(key: &PairKey) -> String {
    compose(
        "P",
        &[&key.principal, &key.action, &key.outcome],
        MAX_SORT_KEY,
    )
}

pub(super) fn principal_sk(principal: &str) -> String {
    compose("R", &[principal], MAX_SORT_KEY)
}

/// A rule's state in the account's partition (`U`: `R` is taken by principals).
pub(super) fn rule_state_sk(rule: &str) -> String {
    compose("U", &[rule], MAX_SORT_KEY)
}

/// The partition of one finding: its own item and one delivery item per sink.
pub(super) fn finding_pk(id: &str) -> String {
    compose("F", &[id], MAX_PARTITION_KEY)
}

pub(super) fn delivery_sk(sink: &str) -> String {
    compose("S", &[sink], MAX_SORT_KEY)
}

/// The partition of one sink's queue of pending findings.
pub(super) fn queue_pk(sink: &str) -> String {
    compose("O", &[sink], MAX_PARTITION_KEY)
}

/// The partition of one sink's delivery turn: which process delivers it, until when.
pub(super) fn turn_pk(sink: &str) -> String {
    compose("L", &[sink], MAX_PARTITION_KEY)
}

/// A queue entry sorts by when its finding was first staged, then by id, as SQLite's outbox
/// orders. The id goes in raw (it is the last part, so it needs no escaping, and escaping
/// would change how ids compare).
pub(super) fn queue_sk(staged_at: Timestamp, id: &str) -> String {
    let key = format!("{}#{id}", sortable(staged_at));
    if key.len() <= MAX_SORT_KEY {
        return key;
    }
    format!("{}~{}", sortable(staged_at), sha256_hex(id))
}

/// Epoch seconds as 20 digits that sort as the numbers do, negative ones included (the sign
/// bit flipped turns i64 order into u64 order).
fn sortable(at: Timestamp) -> String {
    format!("{:020}", (at.unix() as u64) ^ (1 << 63))
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The key of one item.
pub(super) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

/// The sort key an item came back with, to match it to what was asked.
pub(super) fn sort_key_of(item: &Item) -> Option<&str> {
    item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(super) fn partition_key_of(item: &Item) -> Option<&str> {
    item.get(PK).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn malformed(item: &Item, name: &str, why: &str) -> StoreError {
    let at = match (partition_key_of(item), sort_key_of(item)) {
        (Some(pk), Some(sk)) => format!("item ({pk}, {sk})"),
        _ => "an item".to_string(),
    };
    StoreError::Query(format!(
        "the stored {at} has {why} `{name}`; the table was changed by something other than \
         trailhound"
    ))
}

pub(super) fn opt_i64(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| malformed(item, name, "a non-integer")),
        Some(_) => Err(malformed(item, name, "a non-number")),
    }
}

pub(super) fn req_i64(item: &Item, name: &str) -> Result<i64, StoreError> {
    opt_i64(item, name)?.ok_or_else(|| malformed(item, name, "no"))
}

pub(super) fn req_time(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    req_i64(item, name).map(Timestamp::from_unix)
}

pub(super) fn opt_time(item: &Item, name: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(opt_i64(item, name)?.map(Timestamp::from_unix))
}

pub(super) fn req_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    u64::try_from(req_i64(item, name)?).map_err(|_| malformed(item, name, "a negative"))
}

pub(super) fn req_str<'i>(item: &'i Item, name: &str) -> Result<&'i str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text),
        Some(_) => Err(malformed(item, name, "a non-string")),
        None => Err(malformed(item, name, "no")),
    }
}

/// `#name` placeholders for every attribute an expression mentions: several of ours
/// (`action`, `count`, `kind`) are DynamoDB reserved words, and a placeholder for all of them
/// means no expression depends on that list.
pub(super) fn names(list: &[&str]) -> HashMap<String, String> {
    list.iter()
        .map(|name| (format!("#{name}"), (*name).to_string()))
        .collect()
}

/// A projection of the given attributes, spelled with [`names`] placeholders.
pub(super) fn projection(list: &[&str]) -> String {
    list.iter()
        .map(|name| format!("#{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(principal: &str, action: &str) -> PairKey {
        PairKey {
            principal: principal.to_string(),
            action: action.to_string(),
            outcome: "success".to_string(),
        }
    }

    #[test]
    fn separators_inside_parts_cannot_make_two_pairs_meet() {
        assert_ne!(pair_sk(&pair("a#b", "c")), pair_sk(&pair("a", "b#c")));
        assert_ne!(pair_sk(&pair("a%23", "c")), pair_sk(&pair("a#", "c")));
        assert_eq!(pair_sk(&pair("a", "b")), "P#a#b#success");
    }

    #[test]
    fn a_key_too_long_for_dynamodb_is_hashed_and_stays_distinct() {
        let long = "r".repeat(1500);
        let one = pair_sk(&pair(&long, "s3:GetObject"));
        let two = pair_sk(&pair(&long, "s3:PutObject"));
        assert!(one.starts_with("P~") && one.len() < MAX_SORT_KEY, "{one}");
        assert_ne!(one, two);
        assert_eq!(one, pair_sk(&pair(&long, "s3:GetObject")));
        assert!(queue_sk(Timestamp::from_unix(1), &long).len() <= MAX_SORT_KEY);
    }

    #[test]
    fn queue_keys_sort_by_staging_time_then_id() {
        let t = Timestamp::from_unix;
        let mut keys = vec![
            queue_sk(t(200), "b"),
            queue_sk(t(100), "c"),
            queue_sk(t(200), "a"),
            queue_sk(t(-5), "z"),
            queue_sk(t(1_700_000_000), "a"),
        ];
        keys.sort();
        let want = vec![
            queue_sk(t(-5), "z"),
            queue_sk(t(100), "c"),
            queue_sk(t(200), "a"),
            queue_sk(t(200), "b"),
            queue_sk(t(1_700_000_000), "a"),
        ];
        assert_eq!(keys, want);
    }

    #[test]
    fn numbers_that_are_not_ours_are_reported_with_their_item() {
        let mut item = key("A#1".to_string(), "C");
        item.insert(WATERMARK.to_string(), s("soon"));
        let e = opt_i64(&item, WATERMARK).unwrap_err().to_string();
        assert!(e.contains("(A#1, C)") && e.contains("watermark"), "{e}");
        item.insert(WATERMARK.to_string(), n("1.5"));
        assert!(opt_i64(&item, WATERMARK).is_err());
        item.insert(WATERMARK.to_string(), n(42));
        assert_eq!(opt_i64(&item, WATERMARK).unwrap(), Some(42));
    }
}
