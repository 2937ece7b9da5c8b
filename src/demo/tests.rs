//! The demo's promises, checked the way the product reads the folder: through the object-name
//! parser, the readers, `Record::parse` and `Principal::of`.
//!
//! One small organisation (two days) is generated and read back once, then dropped from disk;
//! the tests share what was read.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cloudtrail::layout::{parse_object_name, ObjectKind, ObjectName};
use crate::cloudtrail::reader::{decompress, split_records};
use crate::cloudtrail::{Action, IdentityType, Outcome, Principal, Record, Timestamp};

use super::{generate, DemoManifest, DemoOptions};

/// A Wednesday late morning, so the hunt hour has people at work as well as automation.
const END: &str = "2024-06-05T11:00:00Z";

fn options(seed: u64, days: u32) -> DemoOptions {
    DemoOptions {
        seed,
        days,
        end: Timestamp::parse(END).unwrap(),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// One record as the hunt sees it.
struct Seen {
    /// Path of its object below the root, with `/` separators.
    file: String,
    delivered: Timestamp,
    account: String,
    event_id: String,
    time: Timestamp,
    principal: String,
    kind: IdentityType,
    action: String,
    outcome: Outcome,
}

/// Everything read back from the generated folder.
struct ReadBack {
    manifest: DemoManifest,
    seen: Vec<Seen>,
    /// Digest objects: relative path, parsed name, and whether the content lists log files.
    digests: Vec<(String, ObjectName, bool)>,
    /// What could not be read the way the product reads it.
    problems: Vec<String>,
}

fn read_back() -> &'static ReadBack {
    static SHARED: OnceLock<ReadBack> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let manifest = generate(dir.path(), &options(7, 2)).unwrap();
        let mut out = ReadBack {
            manifest,
            seen: Vec::new(),
            digests: Vec::new(),
            problems: Vec::new(),
        };
        for path in files(dir.path()) {
            let rel = path
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            read_object(&path, rel, &mut out);
        }
        out
    })
}

fn read_object(path: &Path, rel: String, out: &mut ReadBack) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let Some(object) = parse_object_name(name) else {
        out.problems
            .push(format!("{rel}: not a CloudTrail object name"));
        return;
    };
    let bytes = match decompress(std::fs::read(path).unwrap()) {
        Ok(b) => b,
        Err(e) => return out.problems.push(format!("{rel}: {e}")),
    };
    if object.kind == ObjectKind::Digest {
        let lists = serde_json::from_slice::<serde_json::Value>(&bytes)
            .is_ok_and(|v| v["logFiles"].is_array());
        out.digests.push((rel, object, lists));
        return;
    }
    let split = split_records(&bytes);
    if let Some(e) = split.error {
        out.problems.push(format!("{rel}: {e}"));
    }
    if split.records.is_empty() {
        out.problems.push(format!("{rel}: no records"));
    }
    for raw in split.records {
        let record = match Record::parse(raw.get()) {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let principal = match Principal::of(&record, object.account.as_str()) {
            Ok(p) => p,
            Err(e) => {
                out.problems.push(format!("{rel}: {}", e.reason()));
                continue;
            }
        };
        out.seen.push(Seen {
            file: rel.clone(),
            delivered: object.delivered,
            account: object.account.to_string(),
            event_id: record.event_id.get().unwrap_or_default().to_string(),
            time: record.event_time,
            principal: principal.key,
            kind: principal.kind,
            action: Action::new(&record.event_source, &record.event_name).short(),
            outcome: Outcome::of(record.error_code.get()),
        });
    }
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let ma = generate(a.path(), &options(42, 1)).unwrap();
    let mb = generate(b.path(), &options(42, 1)).unwrap();
    let mc = generate(c.path(), &options(43, 1)).unwrap();
    let fa = files(a.path());
    let fb = files(b.path());
    let rel = |root: &Path, v: &[PathBuf]| -> Vec<PathBuf> {
        v.iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(a.path(), &fa), rel(b.path(), &fb));
    for (x, y) in fa.iter().zip(&fb).step_by(37) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
    assert_eq!(
        (ma.records, ma.bytes_compressed),
        (mb.records, mb.bytes_compressed)
    );
    assert_eq!(ma.injected[0].event_ids, mb.injected[0].event_ids);
    assert_ne!(ma.accounts, mc.accounts);
}

#[test]
fn every_object_is_read_the_way_the_product_reads_it() {
    let r = read_back();
    assert!(
        r.problems.is_empty(),
        "{:#?}",
        &r.problems[..r.problems.len().min(10)]
    );
    assert_eq!(r.seen.len() as u64, r.manifest.records);
    let objects: BTreeSet<&str> = r.seen.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(objects.len() as u64, r.manifest.objects);
    assert!(r.seen.iter().all(|s| !s.event_id.is_empty()));
}

#[test]
fn objects_sit_in_their_delivery_day_and_hold_no_event_after_delivery() {
    let r = read_back();
    let m = &r.manifest;
    for s in &r.seen {
        assert!(
            s.time <= s.delivered,
            "{} at {} delivered {}",
            s.event_id,
            s.time,
            s.delivered
        );
        assert!(s.delivered >= m.history.0 && s.delivered < m.hunt.1);
        let (y, mo, d) = s.delivered.date();
        let day = format!("/{y:04}/{mo:02}/{d:02}/");
        let in_day = s.file.starts_with("AWSLogs/o-")
            && s.file.contains("/CloudTrail/")
            && s.file.contains(&day);
        assert!(in_day, "{} is not in {day}", s.file);
    }
    let accounts: BTreeSet<&str> = r.seen.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(accounts.len(), 3);
    let regions: BTreeSet<&str> = r
        .seen
        .iter()
        .filter_map(|s| s.file.split('/').nth(4))
        .collect();
    assert!(regions.len() >= 3, "{regions:?}");
}

#[test]
fn every_identity_type_appears() {
    let r = read_back();
    let kinds: BTreeSet<IdentityType> = r.seen.iter().map(|s| s.kind).collect();
    for kind in IdentityType::ALL {
        if kind != IdentityType::Unknown {
            assert!(kinds.contains(&kind), "no {kind} records");
        }
    }
    assert!(!kinds.contains(&IdentityType::Unknown));
    let roles: BTreeSet<&str> = r
        .seen
        .iter()
        .filter(|s| s.kind == IdentityType::AssumedRole)
        .map(|s| s.principal.as_str())
        .collect();
    for part in [
        "/aws-reserved/sso.amazonaws.com/",
        "/aws-service-role/",
        ":role/ci/",
        ":role/app-server-role",
        ":role/service-role/",
    ] {
        assert!(
            roles.iter().any(|r| r.contains(part)),
            "no role like {part}"
        );
    }
}

#[test]
fn injected_attacks_lie_in_the_hunt_hour_under_their_principal() {
    let r = read_back();
    let m = &r.manifest;
    let by_id: HashMap<&str, &Seen> = r.seen.iter().map(|s| (s.event_id.as_str(), s)).collect();
    let names: BTreeSet<&str> = m.injected.iter().map(|a| a.name).collect();
    for name in [
        "instance-credentials-exfiltrated",
        "access-key-for-another-user",
        "cloudtrail-stop-logging",
        "new-user-console-login-without-mfa",
        "denied-burst",
        "root-console-login",
    ] {
        assert!(names.contains(name), "{name} missing");
    }
    for attack in &m.injected {
        assert!(!attack.event_ids.is_empty(), "{}", attack.name);
        for id in &attack.event_ids {
            let s = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{}: {id} not written", attack.name));
            assert!(
                s.delivered >= m.hunt.0 && s.delivered < m.hunt.1,
                "{}",
                attack.name
            );
            assert!(s.time >= m.hunt.0, "{}", attack.name);
            assert_eq!(s.principal, attack.principal_key, "{}", attack.name);
            assert_eq!(s.account, attack.account.as_str(), "{}", attack.name);
            assert!(
                attack.actions.contains(&s.action),
                "{}: {}",
                attack.name,
                s.action
            );
        }
    }
}

#[test]
fn attacks_have_the_shapes_of_their_techniques() {
    let r = read_back();
    let attack = |name: &str| r.manifest.injected.iter().find(|a| a.name == name).unwrap();
    let by_id: HashMap<&str, &Seen> = r.seen.iter().map(|s| (s.event_id.as_str(), s)).collect();
    let burst = attack("denied-burst");
    let denied: Vec<&Seen> = burst
        .event_ids
        .iter()
        .map(|id| by_id[id.as_str()])
        .filter(|s| s.outcome == Outcome::Denied)
        .collect();
    assert!(
        (20..=30).contains(&denied.len()),
        "{} denied calls",
        denied.len()
    );
    let first = denied.iter().map(|s| s.time).min().unwrap();
    let last = denied.iter().map(|s| s.time).max().unwrap();
    assert!(last.since(first).as_seconds() <= 60);
    // The stolen credentials belong to the role the SSM agent uses every day.
    let exfil = attack("instance-credentials-exfiltrated");
    assert!(r.seen.iter().any(|s| s.principal == exfil.principal_key
        && s.action == "ssm:UpdateInstanceInformation"
        && s.delivered < r.manifest.hunt.0));
    assert!(attack("access-key-for-another-user")
        .actions
        .contains(&"iam:CreateAccessKey".to_string()));
    assert!(attack("cloudtrail-stop-logging")
        .actions
        .contains(&"cloudtrail:StopLogging".to_string()));
    assert_eq!(
        attack("new-user-console-login-without-mfa").actions[0],
        "signin:ConsoleLogin"
    );
    assert!(attack("root-console-login")
        .principal_key
        .ends_with(":root"));
}

#[test]
fn hunt_hour_routine_is_known_behaviour() {
    let r = read_back();
    let m = &r.manifest;
    let attack_ids: HashSet<&str> = m
        .injected
        .iter()
        .flat_map(|a| a.event_ids.iter().map(String::as_str))
        .collect();
    let key = |s: &Seen| {
        (
            s.account.clone(),
            s.principal.clone(),
            s.action.clone(),
            s.outcome,
        )
    };
    let history: HashSet<_> = r
        .seen
        .iter()
        .filter(|s| s.delivered < m.hunt.0)
        .map(key)
        .collect();
    let hunt: Vec<&Seen> = r.seen.iter().filter(|s| s.delivered >= m.hunt.0).collect();
    let new: BTreeSet<_> = hunt
        .iter()
        .filter(|s| !attack_ids.contains(s.event_id.as_str()) && !history.contains(&key(s)))
        .map(|s| (s.principal.clone(), s.action.clone()))
        .collect();
    assert!(
        hunt.len() > 300,
        "only {} records in the hunt hour",
        hunt.len()
    );
    assert!(
        !new.is_empty() && new.len() <= 12,
        "benign novelties: {new:?}"
    );
}

#[test]
fn late_duplicate_and_after_midnight_deliveries_exist() {
    let r = read_back();
    let late = r
        .seen
        .iter()
        .filter(|s| s.delivered.unix() - s.time.unix() >= 30 * 60)
        .count();
    assert!(late > 0, "no late events");
    let mut ids = HashSet::new();
    let twice = r
        .seen
        .iter()
        .filter(|s| !ids.insert(s.event_id.as_str()))
        .count();
    assert!(twice > 0, "no event delivered twice");
    let across = r
        .seen
        .iter()
        .filter(|s| s.time.day_start() < s.delivered.day_start())
        .count();
    assert!(
        across > 0,
        "no event from before midnight delivered after it"
    );
}

#[test]
fn digests_sit_beside_the_logs_and_one_falls_in_the_hunt_hour() {
    let r = read_back();
    assert!(!r.digests.is_empty());
    for (path, name, lists) in &r.digests {
        assert!(
            path.contains(&format!("/{}/CloudTrail-Digest/", name.account)),
            "{path}"
        );
        assert!(lists, "{path} lists no log files");
    }
    assert!(r
        .digests
        .iter()
        .any(|(_, d, _)| d.delivered >= r.manifest.hunt.0));
}

#[test]
fn no_history_or_too_much_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    for days in [0, DemoOptions::MAX_DAYS + 1] {
        let err = generate(dir.path(), &options(1, days)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(&days.to_string()), "{err}");
    }
}

#[test]
#[ignore = "prints the volume of a full demo; run with --release -- --ignored --nocapture"]
fn full_demo_volume() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::env::var_os("DEMO_OUT").map_or_else(|| dir.path().to_path_buf(), PathBuf::from);
    let started = std::time::Instant::now();
    let m = generate(&out, &options(1, DemoOptions::DEFAULT_DAYS)).unwrap();
    println!(
        "objects {} records {} MB {:.1} in {:.2?}",
        m.objects,
        m.records,
        m.bytes_compressed as f64 / 1e6,
        started.elapsed()
    );
}
