//! The real binary delivering to a local Splunk HEC: `kill -9` during delivery and a re-run
//! lose nothing and never change an id; and the token, whether it comes from a variable, a
//! file or Secrets Manager, appears in no output, log line, state or findings file, even at
//! trace level and when the collector refuses it.

mod common;
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::hec::{Fault, HecReceiver, ReceiverOptions};
use trailhound::alert::Finding;
use trailhound::cloudtrail::Timestamp;
use trailhound::demo::{generate, DemoOptions};

/// A token to look for: if any of it leaks, the search finds it.
const MARKER: &str = "c0ffee00-7e57-4a11-b0b0-5ecre7000001";

struct Setup {
    dir: tempfile::TempDir,
    logs: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        seed: 11,
        days: 3,
        end: Timestamp::parse("2024-03-07T00:00:00Z").unwrap(),
    };
    let logs = generate(&dir.path().join("org"), &options)
        .unwrap()
        .logs_root;
    Setup { dir, logs }
}

/// A config file whose one collector is `url`, with `extra` lines in its section.
fn config(dir: &Path, name: &str, url: &str, extra: &str) -> PathBuf {
    let path = dir.join(name);
    let token = if extra.contains("token_") {
        ""
    } else {
        "token_env = \"TRAILHOUND_HEC_TOKEN\"\n"
    };
    std::fs::write(
        &path,
        format!(
            "[hunt]\nmin_principal_age = \"0s\"\n\n[[sinks.hec]]\nurl = \"{url}\"\nmax_events = 3\ntimeout = \"2s\"\nretry_for = \"20s\"\nretry_initial_ms = 10\n{token}{extra}\n"
        ),
    )
    .unwrap();
    path
}

fn hunt(setup: &Setup, config: &Path, state: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    cmd.current_dir(setup.dir.path())
        .arg("--config")
        .arg(config)
        .args(["--state", state, "hunt", "--logs"])
        .arg(&setup.logs)
        .args([
            "--from",
            "2024-03-06T00:00:00Z",
            "--until",
            "2024-03-07T00:00:00Z",
            "--format",
            "jsonl",
        ])
        .env("TRAILHOUND_HEC_TOKEN", MARKER)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn receiver(rt: &tokio::runtime::Runtime, acks: bool) -> HecReceiver {
    rt.block_on(HecReceiver::start(ReceiverOptions {
        token: MARKER.into(),
        require_acks: acks,
        polls_before_ack: 1,
    }))
}

fn findings_of(receiver: &HecReceiver) -> Vec<Finding> {
    receiver
        .events()
        .into_iter()
        // Each run also ends with its health event.
        .filter(|e| e["sourcetype"] == "trailhound:finding")
        .map(|e| serde_json::from_value(e["event"].clone()).expect("a finding"))
        .collect()
}

/// Waits until `ready` or the child ends; true when `ready` came first.
fn wait_for(child: &mut std::process::Child, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("neither ready nor finished within 120 s");
}

#[test]
fn kill_during_delivery_loses_nothing_and_never_changes_ids() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let setup = setup();

    // The reference: one uninterrupted run.
    let clean_receiver = receiver(&rt, false);
    let clean_config = config(setup.dir.path(), "clean.toml", &clean_receiver.url(), "");
    let status = hunt(&setup, &clean_config, "clean.db").status().unwrap();
    assert!(status.success());
    let clean: BTreeSet<String> = findings_of(&clean_receiver)
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert!(clean.len() >= 9, "a few requests' worth: {}", clean.len());
    drop(clean_receiver);

    let mut table = Vec::new();
    // (requests seen before the kill, acks on)
    let rounds = [(1, false), (2, false), (4, false), (1, true), (3, true)];
    for (round, (after_posts, acks)) in rounds.into_iter().enumerate() {
        let receiver = receiver(&rt, acks);
        // Every answer a little slow, so the kill lands mid-delivery.
        receiver.every_nth(1, || Fault::Slow(Duration::from_millis(40)));
        let extra = if acks { "acks = true\n" } else { "" };
        let cfg = config(
            setup.dir.path(),
            &format!("round-{round}.toml"),
            &receiver.url(),
            extra,
        );
        let state = format!("round-{round}.db");
        let mut child = hunt(&setup, &cfg, &state).spawn().unwrap();
        let posts = after_posts as u32;
        let killed = wait_for(&mut child, || {
            let s = receiver.stats();
            if acks {
                s.ack_polls >= posts
            } else {
                s.event_posts >= posts
            }
        });
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(killed, "round {round}: the kill came before the run ended");
        let before_rerun = receiver.events().len();

        let status = hunt(&setup, &cfg, &state).status().unwrap();
        assert!(status.success(), "round {round}: the re-run completes");

        let got = findings_of(&receiver);
        let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &got {
            *copies.entry(f.id.as_str()).or_default() += 1;
        }
        let ids: BTreeSet<String> = copies.keys().map(|s| s.to_string()).collect();
        let lost: Vec<_> = clean.difference(&ids).collect();
        assert!(lost.is_empty(), "round {round}: lost {lost:?}");
        assert_eq!(ids, clean, "round {round}: the same ids as the clean run");
        let mut ids_per_fact: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for f in &got {
            let fact = format!(
                "{}|{}|{:?}|{}",
                f.kind.name(),
                f.principal.key,
                f.action,
                f.first_seen
            );
            ids_per_fact.entry(fact).or_default().insert(&f.id);
        }
        assert!(
            ids_per_fact.values().all(|ids| ids.len() == 1),
            "round {round}: a finding under two ids"
        );
        let repeated = copies.values().filter(|&&n| n > 1).count();
        table.push(format!(
            "round {round} (kill after {after_posts} {}, acks {acks}): produced {}, received before the kill {before_rerun}, received {}, repeated {repeated}, lost {}",
            if acks { "ack polls" } else { "requests" },
            clean.len(),
            ids.len(),
            lost.len()
        ));
    }
    eprintln!("{}", table.join("\n"));
}

/// Runs the binary and returns everything it left behind, as bytes to search.
fn outputs(setup: &Setup, cmd: &mut Command, files: &[&str]) -> (Output, Vec<u8>) {
    let out = cmd
        .env("RUST_LOG", "trace")
        .args(["-vv", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let mut all = out.stdout.clone();
    all.extend_from_slice(&out.stderr);
    for f in files {
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(setup.dir.path().join(format!("{f}{suffix}"))) {
                all.extend_from_slice(&bytes);
            }
        }
    }
    (out, all)
}

fn leaks(haystack: &[u8]) -> bool {
    // Any 12-character piece of the token counts, not only the whole of it.
    let marker = MARKER.as_bytes();
    marker
        .windows(12)
        .any(|piece| haystack.windows(piece.len()).any(|w| w == piece))
}

#[test]
fn the_token_never_appears_in_any_output() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let setup = setup();
    let mut tried = 0;

    // Accepted, with retries along the way, at trace level.
    let good = receiver(&rt, false);
    good.script(vec![Fault::busy(), Fault::Drop, Fault::too_many(0)]);
    let cfg = config(
        setup.dir.path(),
        "env.toml",
        &good.url(),
        "token_env = \"TRAILHOUND_HEC_TOKEN\"\n",
    );
    let (out, all) = outputs(
        &setup,
        hunt(&setup, &cfg, "env.db").args(["--out", "env.jsonl"]),
        &["env.db", "env.jsonl"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!good.events().is_empty());
    assert!(!leaks(&all), "the token leaked with token_env");
    tried += 1;

    // Refused: the collector expects another token, and says so.
    let refusing = rt.block_on(HecReceiver::start(ReceiverOptions {
        token: "another-token".into(),
        ..Default::default()
    }));
    let cfg = config(
        setup.dir.path(),
        "file.toml",
        &refusing.url(),
        "token_file = \"token.txt\"\n",
    );
    std::fs::write(setup.dir.path().join("token.txt"), format!("{MARKER}\n")).unwrap();
    let (out, all) = outputs(
        &setup,
        hunt(&setup, &cfg, "file.db").env_remove("TRAILHOUND_HEC_TOKEN"),
        &["file.db"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a refused delivery fails the run"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Invalid token (HEC code 4)"), "{stderr}");
    assert!(!leaks(&all), "the token leaked with token_file on a 403");
    tried += 1;

    // From Secrets Manager, in the emulator.
    let secret = format!("trailhound/hec-{}", moto::unique(8));
    rt.block_on(async {
        let sm = aws_sdk_secretsmanager::Client::new(&moto::sdk().await);
        sm.create_secret()
            .name(&secret)
            .secret_string(format!(r#"{{"token":"{MARKER}"}}"#))
            .send()
            .await
            .expect("CreateSecret in the emulator");
    });
    let from_secret = receiver(&rt, false);
    let cfg = config(
        setup.dir.path(),
        "secret.toml",
        &from_secret.url(),
        &format!("token_secret = \"{secret}\"\ntoken_secret_key = \"token\"\n"),
    );
    let mut cmd = hunt(&setup, &cfg, "secret.db");
    cmd.env_remove("TRAILHOUND_HEC_TOKEN")
        .envs(moto::child_env());
    let (out, all) = outputs(&setup, &mut cmd, &["secret.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !from_secret.events().is_empty(),
        "delivered with the token from the secret"
    );
    assert!(!leaks(&all), "the token leaked with token_secret");
    tried += 1;

    // A secret that does not exist: a clear error naming the secret, before any hunting.
    let cfg = config(
        setup.dir.path(),
        "missing.toml",
        &from_secret.url(),
        "token_secret = \"trailhound/no-such-secret\"\n",
    );
    let mut cmd = hunt(&setup, &cfg, "missing.db");
    cmd.envs(moto::child_env());
    let (out, _) = outputs(&setup, &mut cmd, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("trailhound/no-such-secret") && stderr.contains("cannot be read"),
        "{stderr}"
    );
    eprintln!("token sources tried: {tried}, leaks: 0");
}
