//! The shipped pack as a whole: it loads cleanly, and on the real, public CloudTrail samples
//! (../shared/data/cloudtrail, see its README) it finds the attacks those samples are known to
//! hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{RuleEngine, RuleHit, RuleOutput, RuleSet, SHIPPED};
use crate::cloudtrail::reader::{decompress, split_records};

#[test]
fn the_shipped_pack_loads_without_problems() {
    let set = RuleSet::shipped().unwrap_or_else(|e| panic!("{e}"));
    assert!(set.len() >= 20, "{} rules", set.len());
    assert_eq!(set.enabled().count(), set.len());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let from_disk = RuleSet::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        from_disk.len(),
        set.len(),
        "SHIPPED lists every file of rules/"
    );
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml"))
        })
        .count();
    assert_eq!(on_disk, SHIPPED.len());
    for rule in set.rules() {
        assert!(
            rule.text.as_deref().is_some_and(|t| t.len() > 80),
            "{} explains itself",
            rule.id
        );
        assert!(rule.tactic.is_some(), "{} has a tactic", rule.id);
    }
}

/// The folder of the real samples: `TRAILHOUND_REAL_DATA`, or beside the project.
fn real_data() -> PathBuf {
    let path = std::env::var_os("TRAILHOUND_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cloudtrail"));
    assert!(
        path.is_dir(),
        "the real CloudTrail samples are not at {}: set TRAILHOUND_REAL_DATA to shared/data/cloudtrail (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Every record of every readable file under `folder`, and how many files were not records.
fn records(folder: &Path) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(bytes) = decompress(std::fs::read(&path).unwrap()) else {
                unreadable += 1;
                continue;
            };
            let split = split_records(&bytes);
            if split.records.is_empty() {
                unreadable += 1;
            }
            for raw in split.records {
                out.push(serde_json::from_str(raw.get()).unwrap());
            }
        }
    }
    (out, unreadable)
}

fn run(set: &RuleSet, records: &[Value]) -> RuleOutput {
    let mut engine = RuleEngine::new(set);
    records.iter().for_each(|r| engine.observe(r));
    engine.finish()
}

fn per_rule(out: &RuleOutput) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for h in &out.hits {
        *counts.entry(h.rule_id.as_str()).or_default() += 1;
    }
    for c in &out.term_candidates {
        *counts.entry(c.rule_id.as_str()).or_default() += 1;
    }
    counts
}

fn hits_of<'o>(out: &'o RuleOutput, rule: &str) -> Vec<&'o RuleHit> {
    out.hits.iter().filter(|h| h.rule_id == rule).collect()
}

fn group_value<'h>(hit: &'h RuleHit, key: &str) -> &'h str {
    hit.group
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// Prints what each rule found, so a run with `--nocapture` shows the pack's effect on the set.
fn report(name: &str, records: usize, unreadable: usize, out: &RuleOutput) {
    println!(
        "{name}: {records} records ({unreadable} files without records), {:?}",
        out.stats
    );
    for (rule, n) in per_rule(out) {
        println!("  {rule}: {n}");
    }
}

fn sample(name: &str) -> RuleOutput {
    let (records, unreadable) = records(&real_data().join(name));
    assert!(!records.is_empty(), "{name}: no records");
    let out = run(&RuleSet::shipped().unwrap(), &records);
    report(name, records.len(), unreadable, &out);
    out
}

#[test]
fn the_pack_finds_the_attacks_of_the_invictus_simulation() {
    let out = sample("invictus-stratus-simulation");

    // 29 denied ec2:GetPasswordData by a new role within seconds.
    let denied = hits_of(&out, "failed-api-calls");
    let password = denied
        .iter()
        .find(|h| {
            group_value(h, "principal")
                .ends_with(":role/stratus-red-team-ec2-get-password-data-role")
        })
        .expect("the GetPasswordData burst is found");
    let peak = password.peak.as_ref().unwrap();
    assert_eq!(peak.count, 29);
    assert!(peak.last.unix() - peak.first.unix() <= 8);
    assert_eq!(
        password.evidence.error_codes,
        ["Client.UnauthorizedOperation"]
    );
    // The busy admin user's scattered refusals are not a burst.
    assert!(denied
        .iter()
        .all(|h| !group_value(h, "principal").ends_with("user/bert-jan")));

    // 20 secretsmanager:GetSecretValue in 3 s.
    let secrets = hits_of(&out, "secrets-many-reads");
    assert_eq!(secrets.len(), 1);
    assert!(secrets[0].peak.as_ref().unwrap().count >= 20);

    // CloudTrail and flow logs turned off.
    let logging: BTreeSet<&str> = hits_of(&out, "logging-critical-change")
        .iter()
        .map(|h| group_value(h, "eventName"))
        .collect();
    for action in [
        "StopLogging",
        "DeleteTrail",
        "PutEventSelectors",
        "DeleteFlowLogs",
    ] {
        assert!(logging.contains(action), "{action} in {logging:?}");
    }

    // RunInstances of p2.xlarge with MaxCount 10 (refused for vCPU limits, twice).
    for rule in [
        "ec2-many-instances-one-request",
        "ec2-large-instances-one-request",
    ] {
        let found = hits_of(&out, rule);
        assert_eq!(found.len(), 2, "{rule}");
        assert!(found
            .iter()
            .all(|h| h.evidence.error_codes == ["Client.VcpuLimitExceeded"]));
    }

    // The new IAM user's console sign-in without MFA, and not the admin's sign-in with MFA.
    let no_mfa = hits_of(&out, "console-login-without-mfa");
    assert_eq!(no_mfa.len(), 1);
    assert!(
        group_value(no_mfa[0], "principal").ends_with(":user/stratus-red-team-nmfalu-gfjyeaypjt")
    );

    assert!(
        hits_of(&out, "root-activity").is_empty(),
        "no root in this set"
    );
    assert_eq!(out.stats.no_event_time, 0);
}

#[test]
fn the_pack_finds_the_same_techniques_in_the_stratus_detonations() {
    let out = sample("stratus-detonations");
    let denied = hits_of(&out, "failed-api-calls");
    assert!(denied
        .iter()
        .any(|h| h.peak.as_ref().is_some_and(|p| p.count == 30)));
    assert_eq!(hits_of(&out, "secrets-many-reads").len(), 1);
    assert_eq!(hits_of(&out, "logging-critical-change").len(), 4);
    assert_eq!(hits_of(&out, "console-login-without-mfa").len(), 1);
    assert_eq!(hits_of(&out, "ec2-large-instances-one-request").len(), 1);
}

#[test]
fn the_pack_on_the_traildiscover_examples_flags_only_logging_changes() {
    // One example per API call, spread over years: no bursts, but the logging calls are there.
    let out = sample("traildiscover-examples");
    let rules: BTreeSet<&str> = out.hits.iter().map(|h| h.rule_id.as_str()).collect();
    assert_eq!(rules, BTreeSet::from(["logging-critical-change"]));
    assert_eq!(hits_of(&out, "logging-critical-change").len(), 6);
}
