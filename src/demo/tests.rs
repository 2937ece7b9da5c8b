//! The demo's promises, checked the way the product reads the folder: through the object-name
//! parser, the readers, `Record::parse` and `Principal::of`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::cloudtrail::layout::{parse_object_name, ObjectKind};
use crate::cloudtrail::reader::{decompress, split_records};
use crate::cloudtrail::{Action, IdentityType, Outcome, Principal, Record, Timestamp};

use super::{generate, DemoManifest, DemoOptions};

/// A Wednesday late morning, so the hunt hour has people at work as well as automation.
const END: &str = "2024-06-05T11:00:00Z";

fn options(seed: u64) -> DemoOptions {
    DemoOptions {
        seed,
        days: 2,
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
    file: PathBuf,
    delivered: Timestamp,
    account: String,
    event_id: String,
    time: Timestamp,
    principal: String,
    kind: IdentityType,
    action: String,
    outcome: Outcome,
}

/// Generates a small org and reads every log object back.
fn generate_and_read(seed: u64) -> (tempfile::TempDir, DemoManifest, Vec<Seen>) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(dir.path(), &options(seed)).unwrap();
    let mut seen = Vec::new();
    for path in files(dir.path()) {
        let name = path.file_name().unwrap().to_str().unwrap();
        let object =
            parse_object_name(name).unwrap_or_else(|| panic!("not a CloudTrail name: {name}"));
        if object.kind != ObjectKind::Log {
            continue;
        }
        let bytes = decompress(std::fs::read(&path).unwrap()).unwrap();
        let split = split_records(&bytes);
        assert!(split.error.is_none(), "{name}: {:?}", split.error);
        assert!(!split.records.is_empty(), "{name} is empty");
        for raw in split.records {
            let record = Record::parse(raw.get()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let principal = Principal::of(&record, object.account.as_str())
                .unwrap_or_else(|e| panic!("{name}: {}", e.reason()));
            seen.push(Seen {
                file: path.clone(),
                delivered: object.delivered,
                account: object.account.to_string(),
                event_id: record.event_id.get().unwrap().to_string(),
                time: record.event_time,
                principal: principal.key,
                kind: principal.kind,
                action: Action::new(&record.event_source, &record.event_name).short(),
                outcome: Outcome::of(record.error_code.get()),
            });
        }
    }
    (dir, manifest, seen)
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let mut small = options(42);
    small.days = 1;
    let ma = generate(a.path(), &small).unwrap();
    let mb = generate(b.path(), &small).unwrap();
    small.seed = 43;
    let mc = generate(c.path(), &small).unwrap();
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
fn every_object_parses_and_no_event_is_after_its_delivery() {
    let (dir, manifest, seen) = generate_and_read(7);
    assert_eq!(seen.len() as u64, manifest.records);
    let objects: BTreeSet<&PathBuf> = seen.iter().map(|s| &s.file).collect();
    assert_eq!(objects.len() as u64, manifest.objects);
    for s in &seen {
        assert!(
            s.time <= s.delivered,
            "{} at {} delivered {}",
            s.event_id,
            s.time,
            s.delivered
        );
        assert!(s.delivered >= manifest.history.0 && s.delivered < manifest.hunt.1);
        let (y, m, d) = s.delivered.date();
        let folder = format!("{y:04}/{m:02}/{d:02}");
        let path = s
            .file
            .strip_prefix(dir.path())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        assert!(path.contains(&folder), "{path} is not in {folder}");
        assert!(path.starts_with(&format!("AWSLogs/o-")), "{path}");
    }
    let accounts: BTreeSet<&str> = seen.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(accounts.len(), 3);
}

#[test]
fn every_identity_type_appears() {
    let (_dir, _manifest, seen) = generate_and_read(7);
    let kinds: BTreeSet<IdentityType> = seen.iter().map(|s| s.kind).collect();
    for kind in IdentityType::ALL {
        if kind != IdentityType::Unknown {
            assert!(kinds.contains(&kind), "no {kind} records");
        }
    }
    assert!(!kinds.contains(&IdentityType::Unknown));
    let roles: BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.kind == IdentityType::AssumedRole)
        .map(|s| s.principal.as_str())
        .collect();
    for part in [
        "/aws-reserved/sso.amazonaws.com/",
        "/aws-service-role/",
        ":role/ci/",
        ":role/app-server-role",
    ] {
        assert!(
            roles.iter().any(|r| r.contains(part)),
            "no role like {part}"
        );
    }
}

#[test]
fn injected_attacks_lie_in_the_hunt_hour_under_their_principal() {
    let (_dir, manifest, seen) = generate_and_read(7);
    let by_id: HashMap<&str, &Seen> = seen.iter().map(|s| (s.event_id.as_str(), s)).collect();
    let names: BTreeSet<&str> = manifest.injected.iter().map(|a| a.name).collect();
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
    for attack in &manifest.injected {
        assert!(!attack.event_ids.is_empty(), "{}", attack.name);
        for id in &attack.event_ids {
            let s = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{}: {id} not written", attack.name));
            assert!(
                s.delivered >= manifest.hunt.0 && s.delivered < manifest.hunt.1,
                "{}",
                attack.name
            );
            assert!(s.time >= manifest.hunt.0, "{}", attack.name);
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
    let burst = manifest
        .injected
        .iter()
        .find(|a| a.name == "denied-burst")
        .unwrap();
    let denied = burst
        .event_ids
        .iter()
        .filter(|id| by_id[id.as_str()].outcome == Outcome::Denied)
        .count();
    assert!((20..=30).contains(&denied), "{denied} denied calls");
    // The exfiltrated credentials belong to the same role the SSM agent uses every day.
    let exfil = manifest
        .injected
        .iter()
        .find(|a| a.name == "instance-credentials-exfiltrated")
        .unwrap();
    assert!(seen.iter().any(|s| s.principal == exfil.principal_key
        && s.action == "ssm:UpdateInstanceInformation"
        && s.delivered < manifest.hunt.0));
}

#[test]
fn hunt_hour_routine_is_known_behaviour() {
    let (_dir, manifest, seen) = generate_and_read(7);
    let attack_ids: HashSet<&str> = manifest
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
    let history: HashSet<_> = seen
        .iter()
        .filter(|s| s.delivered < manifest.hunt.0)
        .map(key)
        .collect();
    let hunt: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.delivered >= manifest.hunt.0)
        .collect();
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
    let (_dir, _manifest, seen) = generate_and_read(7);
    let late = seen
        .iter()
        .filter(|s| s.delivered.unix() - s.time.unix() >= 30 * 60)
        .count();
    assert!(late > 0, "no late events");
    let mut ids = HashSet::new();
    let twice = seen
        .iter()
        .filter(|s| !ids.insert(s.event_id.as_str()))
        .count();
    assert!(twice > 0, "no event delivered twice");
    let across = seen
        .iter()
        .filter(|s| s.time.day_start() < s.delivered.day_start())
        .count();
    assert!(
        across > 0,
        "no event from before midnight delivered after it"
    );
}

#[test]
fn digests_are_beside_the_logs_and_one_falls_in_the_hunt_hour() {
    let (dir, manifest, _seen) = generate_and_read(7);
    let digests: Vec<_> = files(dir.path())
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let parsed = parse_object_name(&name)?;
            (parsed.kind == ObjectKind::Digest).then_some((p, parsed))
        })
        .collect();
    assert!(!digests.is_empty());
    for (path, _) in &digests {
        assert!(path.to_string_lossy().contains("CloudTrail-Digest"));
        let text = decompress(std::fs::read(path).unwrap()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert!(value["logFiles"].is_array());
    }
    assert!(digests.iter().any(|(_, d)| d.delivered >= manifest.hunt.0));
}

#[test]
fn no_history_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(1);
    opts.days = 0;
    let err = generate(dir.path(), &opts).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
#[ignore = "prints the volume of a full demo; run with --release -- --ignored --nocapture"]
fn full_demo_volume() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let m = generate(
        dir.path(),
        &DemoOptions::new(1, Timestamp::parse(END).unwrap()),
    )
    .unwrap();
    println!(
        "objects {} records {} MB {:.1} in {:.2?}",
        m.objects,
        m.records,
        m.bytes_compressed as f64 / 1e6,
        started.elapsed()
    );
}
