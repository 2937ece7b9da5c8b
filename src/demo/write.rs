//! Writes objects where CloudTrail would: gzip-compressed `{"Records":[...]}` log files under
//! `AWSLogs/o-ORG/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`, and hourly digest files beside them
//! under `CloudTrail-Digest/`, chained and hashing the log files they cover, as real ones do.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

use crate::cloudtrail::layout::{day_prefix, object_file_name};
use crate::cloudtrail::{Region, Span, Timestamp};

use super::deliver::Object;
use super::event::Event;
use super::json::{push_str_literal, Obj};
use super::org::{Org, GLOBAL};
use super::rng::Rng;

/// What was written, for the manifest.
#[derive(Default)]
pub struct Totals {
    pub objects: u64,
    pub records: u64,
    pub bytes_compressed: u64,
}

/// One written log file, as a digest lists it.
pub struct LogFile {
    account: usize,
    region: &'static str,
    delivered: Timestamp,
    key: String,
    sha256: String,
    oldest: Timestamp,
    newest: Timestamp,
}

fn region(name: &str) -> io::Result<Region> {
    Region::parse(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    // flate2 writes a zero modification time, so equal input gives equal bytes.
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 6), Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Creates folders once each; the same day folder receives hundreds of objects.
struct Folders(HashSet<PathBuf>);

impl Folders {
    fn file(&mut self, root: &Path, key: &str) -> io::Result<PathBuf> {
        let path = root.join(key);
        if let Some(parent) = path.parent() {
            if !self.0.contains(parent) {
                fs::create_dir_all(parent)?;
                self.0.insert(parent.to_path_buf());
            }
        }
        Ok(path)
    }
}

/// Writes the log objects and returns the totals and what digests need. Objects delivered
/// from `hash_from` on are hashed for the digests; hashing everything would double the work.
/// The work is spread over the machine's cores; every object's bytes depend only on itself.
pub fn objects(
    root: &Path,
    org: &Org,
    objects: &[Object],
    events: &[Event],
    hash_from: Timestamp,
) -> io::Result<(Totals, Vec<LogFile>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let part = objects.len().div_ceil(threads).max(1);
    let results: Vec<io::Result<(Totals, Vec<LogFile>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = objects
            .chunks(part)
            .map(|chunk| scope.spawn(move || write_part(root, org, chunk, events, hash_from)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a demo writer thread panicked")))
            })
            .collect()
    });
    let mut totals = Totals::default();
    let mut logs = Vec::with_capacity(objects.len());
    for result in results {
        let (t, l) = result?;
        totals.objects += t.objects;
        totals.records += t.records;
        totals.bytes_compressed += t.bytes_compressed;
        logs.extend(l);
    }
    Ok((totals, logs))
}

fn write_part(
    root: &Path,
    org: &Org,
    objects: &[Object],
    events: &[Event],
    hash_from: Timestamp,
) -> io::Result<(Totals, Vec<LogFile>)> {
    let mut totals = Totals::default();
    let mut logs = Vec::new();
    let mut folders = Folders(HashSet::new());
    let mut text = String::new();
    for o in objects {
        let account = &org.accounts[o.account].id;
        let reg = region(o.region)?;
        let key = format!(
            "{}{}",
            day_prefix(Some(&org.id), account, &reg, o.delivered),
            object_file_name(account, &reg, o.delivered, &o.rand)
        );
        text.clear();
        text.push_str("{\"Records\":[");
        for (n, &i) in o.events.iter().enumerate() {
            if n > 0 {
                text.push(',');
            }
            text.push_str(&events[i].json);
        }
        text.push_str("]}");
        let compressed = gzip(text.as_bytes())?;
        fs::write(folders.file(root, &key)?, &compressed)?;
        totals.objects += 1;
        totals.records += o.events.len() as u64;
        totals.bytes_compressed += compressed.len() as u64;
        if o.delivered < hash_from {
            continue;
        }
        let times = o.events.iter().map(|&i| events[i].time);
        logs.push(LogFile {
            account: o.account,
            region: o.region,
            delivered: o.delivered,
            sha256: hex(&Sha256::digest(text.as_bytes())),
            oldest: times.clone().min().unwrap_or(o.delivered),
            newest: times.max().unwrap_or(o.delivered),
            key,
        });
    }
    Ok((totals, logs))
}

/// A JSON string, or `null` when there is none (the first digest has no predecessor).
fn null(value: Option<&str>) -> String {
    let mut out = String::new();
    match value {
        Some(v) => push_str_literal(&mut out, v),
        None => out.push_str("null"),
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDDTHHmmssZ`, the stamp in digest names.
fn stamp(t: Timestamp) -> String {
    t.to_string().replace(['-', ':'], "")
}

/// Writes the hourly digests of each account and region for the hours ending at the last
/// `hours` hour boundaries before `end`, each delivered some minutes after its hour, if that
/// is before `end`. Returns how many were written.
pub fn digests(
    root: &Path,
    org: &Org,
    logs: &[LogFile],
    seed: u64,
    hours: i64,
    end: Timestamp,
) -> io::Result<u64> {
    let mut rng = Rng::stream(seed, "digests");
    let mut folders = Folders(HashSet::new());
    let last = end.floor_to(Span::hours(1));
    let mut by_stream: BTreeMap<(usize, &str), Vec<&LogFile>> = BTreeMap::new();
    for log in logs {
        by_stream
            .entry((log.account, log.region))
            .or_default()
            .push(log);
    }
    let fingerprint = rng.hex(32);
    let mut written = 0;
    for (account, acct) in org.accounts.iter().enumerate() {
        for region_name in super::org::REGIONS {
            let reg = region(region_name)?;
            let mut previous: Option<(String, String, String)> = None;
            for h in (0..hours).rev() {
                let stop = last.saturating_sub(Span::hours(h));
                let start = stop.saturating_sub(Span::hours(1));
                let delivered = stop.saturating_add(Span::seconds(rng.range(300, 1500)));
                if delivered >= end {
                    continue;
                }
                let covered: Vec<&&LogFile> = by_stream
                    .get(&(account, region_name))
                    .map(|v| {
                        v.iter()
                            .filter(|l| l.delivered >= start && l.delivered < stop)
                            .collect()
                    })
                    .unwrap_or_default();
                let (y, m, d) = delivered.date();
                let key = format!(
                    "AWSLogs/{}/{}/CloudTrail-Digest/{reg}/{y:04}/{m:02}/{d:02}/{}_CloudTrail-Digest_{reg}_{}_{GLOBAL}_{}.json.gz",
                    org.id,
                    acct.id,
                    acct.id,
                    org.org_trail,
                    stamp(delivered)
                );
                let files: Vec<String> = covered
                    .iter()
                    .map(|l| {
                        Obj::new()
                            .str("s3Bucket", &org.trail_bucket)
                            .str("s3Object", &l.key)
                            .str("hashValue", &l.sha256)
                            .str("hashAlgorithm", "SHA-256")
                            .str("newestEventTime", &l.newest.to_string())
                            .str("oldestEventTime", &l.oldest.to_string())
                            .finish()
                    })
                    .collect();
                let newest = covered.iter().map(|l| l.newest).max();
                let oldest = covered.iter().map(|l| l.oldest).min();
                let (prev_key, prev_hash, prev_signature) = match &previous {
                    Some((k, h, s)) => (Some(k.as_str()), Some(h.as_str()), Some(s.as_str())),
                    None => (None, None, None),
                };
                let text = Obj::with_capacity(512 + files.len() * 300)
                    .str("awsAccountId", acct.id.as_str())
                    .str("digestStartTime", &start.to_string())
                    .str("digestEndTime", &stop.to_string())
                    .str("digestS3Bucket", &org.trail_bucket)
                    .str("digestS3Object", &key)
                    .str("digestPublicKeyFingerprint", &fingerprint)
                    .str("digestSignatureAlgorithm", "SHA256withRSA")
                    .raw(
                        "newestEventTime",
                        &null(newest.map(|t| t.to_string()).as_deref()),
                    )
                    .raw(
                        "oldestEventTime",
                        &null(oldest.map(|t| t.to_string()).as_deref()),
                    )
                    .raw(
                        "previousDigestS3Bucket",
                        &null(prev_key.map(|_| org.trail_bucket.as_str())),
                    )
                    .raw("previousDigestS3Object", &null(prev_key))
                    .raw("previousDigestHashValue", &null(prev_hash))
                    .str("previousDigestHashAlgorithm", "SHA-256")
                    .raw("previousDigestSignature", &null(prev_signature))
                    .raw("logFiles", &format!("[{}]", files.join(",")))
                    .finish();
                fs::write(folders.file(root, &key)?, gzip(text.as_bytes())?)?;
                previous = Some((key, hex(&Sha256::digest(text.as_bytes())), rng.hex(512)));
                written += 1;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_stamps_carry_seconds() {
        let t = Timestamp::parse("2024-06-03T10:07:42Z").unwrap();
        assert_eq!(stamp(t), "20240603T100742Z");
    }
}
