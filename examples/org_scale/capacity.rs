//! DynamoDB capacity computed from item sizes and calls, as DynamoDB bills it, because the
//! emulator's `ConsumedCapacity` is a constant per call (1 unit per `BatchWriteItem` whatever
//! it holds, one per key of a `BatchGetItem`), not a measure.
//!
//! The rules (Amazon DynamoDB Developer Guide, "DynamoDB item sizes and formats" and
//! "DynamoDB read and write operations"):
//! - an item's size is the sum of its attribute names' and values' sizes: a string its UTF-8
//!   bytes, a number 1 byte per two significant digits plus 1, a binary its raw bytes, a
//!   boolean or null 1 byte, a list or map 3 bytes plus 1 byte and the size of each element;
//! - a read of an item up to 4 KB is 1 read unit strongly consistent, 0.5 eventually
//!   consistent, larger items in 4 KB steps; a batch read is each item on its own; reading a
//!   missing item still costs the minimum; a `Query` rounds the total of what it read up to
//!   4 KB once;
//! - a write of an item up to 1 KB is 1 write unit, larger in 1 KB steps, the larger of the
//!   item before and after counting; a batch write is each item on its own; a conditional
//!   write that its condition refuses still consumes.
//!
//! The proxy logs which items each call touched; a scan of the table before and after the hour
//! gives their sizes. An item created and changed within the hour is sized as it ended.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// An item's table key, hashed: the log stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItemKey(u64);

impl ItemKey {
    pub fn new(pk: &str, sk: &str) -> ItemKey {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pk.hash(&mut h);
        sk.hash(&mut h);
        ItemKey(h.finish())
    }
}

/// One DynamoDB request, as far as capacity goes.
#[derive(Clone, Debug)]
pub enum DdbOp {
    /// `GetItem` or `BatchGetItem`.
    Get {
        keys: Vec<ItemKey>,
        consistent: bool,
    },
    /// `PutItem`, `UpdateItem`, `DeleteItem` or `BatchWriteItem`; puts carry the size written.
    Write {
        puts: Vec<(ItemKey, u64)>,
        updates: Vec<ItemKey>,
        deletes: Vec<ItemKey>,
    },
    /// `Query`: the bytes of the items it returned.
    Query { bytes: u64, consistent: bool },
}

fn number_size(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1);
    (significant as u64).div_ceil(2) + 1
}

/// The size of one attribute value in DynamoDB's JSON (`{"S": "..."}`, `{"N": "..."}`, ...).
fn value_size(v: &serde_json::Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, |s| (s.len() as u64 * 3) / 4),
        "BOOL" | "NULL" => 1,
        "SS" => inner.as_array().map_or(0, |a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .map(|s| s.len() as u64)
                .sum()
        }),
        "NS" => inner.as_array().map_or(0, |a| {
            a.iter().filter_map(|s| s.as_str()).map(number_size).sum()
        }),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum())
        }
        "M" => 3 + item_size(inner) + inner.as_object().map_or(0, |m| m.len() as u64),
        _ => 0,
    }
}

/// The size of an item (a map of attribute names to values) in bytes.
pub fn item_size(item: &serde_json::Value) -> u64 {
    item.as_object().map_or(0, |attrs| {
        attrs
            .iter()
            .map(|(name, v)| name.len() as u64 + value_size(v))
            .sum()
    })
}

/// Item sizes of the whole table at one moment.
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    pub items: HashMap<ItemKey, u64>,
}

/// Scans `table` straight from the emulator (not through the counting proxy), a page at a
/// time, handing each page's items to `each`.
async fn scan_pages(upstream: &str, table: &str, mut each: impl FnMut(Vec<serde_json::Value>)) {
    let mut start: Option<serde_json::Value> = None;
    loop {
        let mut request = serde_json::json!({ "TableName": table });
        if let Some(k) = start.take() {
            request["ExclusiveStartKey"] = k;
        }
        let mut out = post_dynamodb(upstream, "Scan", &request.to_string()).await;
        if let Some(serde_json::Value::Array(items)) = out.get_mut("Items").map(std::mem::take) {
            each(items);
        }
        match out.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() => start = Some(k.clone()),
            _ => break,
        }
    }
}

impl Sizes {
    pub async fn scan(upstream: &str, table: &str) -> Sizes {
        let mut items = HashMap::new();
        scan_pages(upstream, table, |page| {
            for item in &page {
                if let (Some(pk), Some(sk)) = (item["pk"]["S"].as_str(), item["sk"]["S"].as_str()) {
                    items.insert(ItemKey::new(pk, sk), item_size(item));
                }
            }
        })
        .await;
        Sizes { items }
    }
}

/// Makes the baselines look `days` old, straight in the emulator's table: every principal's
/// first-seen and every account's history start (`since`) move back by `days`. Returns how
/// many items were rewritten.
pub async fn backdate(upstream: &str, table: &str, days: i64) -> usize {
    let shift = days * 86_400;
    let mut changed = Vec::new();
    scan_pages(upstream, table, |page| {
        for mut item in page {
            let sk = item["sk"]["S"].as_str().unwrap_or("").to_string();
            let field = if sk.starts_with("R#") {
                "first_seen"
            } else if sk == "C" {
                "since"
            } else {
                continue;
            };
            let Some(t) = item[field]["N"]
                .as_str()
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            item[field] = serde_json::json!({ "N": (t - shift).to_string() });
            changed.push(item);
        }
    })
    .await;
    for batch in changed.chunks(25) {
        let writes: Vec<serde_json::Value> = batch
            .iter()
            .map(|item| serde_json::json!({ "PutRequest": { "Item": item } }))
            .collect();
        let request = serde_json::json!({ "RequestItems": { table: writes } });
        post_dynamodb(upstream, "BatchWriteItem", &request.to_string()).await;
    }
    changed.len()
}

async fn post_dynamodb(upstream: &str, op: &str, body: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The emulator reads the account and region from the credential scope; it does not check
    // the signature.
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {upstream}\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amz-target: DynamoDB_20120810.{op}\r\nauthorization: AWS4-HMAC-SHA256 \
         Credential=testing/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, \
         Signature=0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(upstream)
        .await
        .expect("the emulator is reachable");
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.expect("read");
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4);
    serde_json::from_slice(&response[start..]).unwrap_or_default()
}

/// One logged DynamoDB call: its operation and what it touched.
#[derive(Clone, Debug)]
pub struct DdbCall {
    pub op: &'static str,
    pub what: DdbOp,
}

/// Capacity units of an hour's calls.
#[derive(Clone, Debug, Default)]
pub struct Units {
    pub read: f64,
    pub write: f64,
    /// Items read and written (each key of a batch counts).
    pub items_read: u64,
    pub items_written: u64,
    /// Read and write units by operation.
    pub by_op: std::collections::BTreeMap<&'static str, (f64, f64)>,
}

fn read_units(size: u64, consistent: bool) -> f64 {
    let steps = size.div_ceil(4096).max(1) as f64;
    if consistent {
        steps
    } else {
        steps / 2.0
    }
}

fn write_units(size: u64) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// The units `log` consumed, with the table's item sizes `before` and `after` the hour.
pub fn units(log: &[DdbCall], before: &Sizes, after: &Sizes) -> Units {
    let size = |k: &ItemKey| {
        before
            .items
            .get(k)
            .or_else(|| after.items.get(k))
            .copied()
            .unwrap_or(0)
    };
    let larger = |k: &ItemKey, new: u64| {
        let old = before.items.get(k).copied().unwrap_or(0);
        old.max(new)
    };
    let mut u = Units::default();
    for call in log {
        let (read0, write0) = (u.read, u.write);
        match &call.what {
            DdbOp::Get { keys, consistent } => {
                for k in keys {
                    u.read += read_units(size(k), *consistent);
                    u.items_read += 1;
                }
            }
            DdbOp::Query { bytes, consistent } => {
                u.read += read_units(*bytes, *consistent);
                u.items_read += 1;
            }
            DdbOp::Write {
                puts,
                updates,
                deletes,
            } => {
                for (k, new) in puts {
                    u.write += write_units(larger(k, *new));
                }
                for k in updates {
                    let new = after.items.get(k).copied().unwrap_or(0);
                    u.write += write_units(larger(k, new));
                }
                for k in deletes {
                    u.write += write_units(size(k));
                }
                u.items_written += (puts.len() + updates.len() + deletes.len()) as u64;
            }
        }
        let entry = u.by_op.entry(call.op).or_default();
        entry.0 += u.read - read0;
        entry.1 += u.write - write0;
    }
    u
}
