//! Runs of the real binary over a small organization, each case with its own state (a SQLite
//! file, or a DynamoDB table in the local emulator), config and findings file, for the tests
//! that kill runs or run two at once.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use trailhound::alert::Finding;
use trailhound::cloudtrail::{Span, Timestamp};

use super::common::{user_call, write_object};
use super::delivery_check;
use super::moto;

/// Where a case keeps its state: its own SQLite file, or its own DynamoDB table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Dynamodb,
}

/// A scheduled hunt of a small organization by the real binary.
pub struct Scheduled {
    dir: PathBuf,
    logs: PathBuf,
    store: Store,
}

pub const ACCOUNTS: [&str; 3] = ["111122223333", "222233334444", "333344445555"];

impl Scheduled {
    /// Three accounts' logs over the last two days, new behaviour in every few hours, all of
    /// it settled whenever the runs happen.
    pub fn new(dir: &Path, store: Store) -> Scheduled {
        let logs = dir.join("logs");
        let now = Timestamp::now();
        for account in ACCOUNTS {
            for hours_ago in [44, 30, 26, 20, 7, 2] {
                let delivered = now.saturating_sub(Span::hours(hours_ago));
                let happened = delivered.saturating_sub(Span::minutes(3)).to_string();
                let records: Vec<_> = ["alice", "bob"]
                    .iter()
                    .enumerate()
                    .map(|(n, user)| {
                        user_call(
                            account,
                            user,
                            "iam.amazonaws.com",
                            &format!("Action{hours_ago}"),
                            &happened,
                            &format!("{account}-{hours_ago}-{n}"),
                        )
                    })
                    .collect();
                write_object(
                    &logs,
                    account,
                    "us-east-1",
                    &delivered.to_string(),
                    &records,
                );
            }
        }
        Scheduled {
            dir: dir.to_path_buf(),
            logs,
            store,
        }
    }

    /// The config of `case`, written once: a lookback that covers all the logs, and the
    /// case's own table when the store is DynamoDB.
    pub fn config(&self, case: &str) -> PathBuf {
        let path = self.dir.join(format!("{case}.toml"));
        if path.exists() {
            return path;
        }
        // Every new pair is a finding: no principal is too young, no account too new.
        let mut text = "[hunt]\nlookback = \"3d\"\nmin_principal_age = \"0s\"\n\
                        account_min_history = \"0s\"\n"
            .to_string();
        if self.store == Store::Dynamodb {
            let table = format!("th-runs-{case}-{}", moto::unique(8));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = trailhound::aws::dynamodb(&moto::sdk().await);
                trailhound::baseline::dynamodb::DynamoStore::create_table(&client, &table)
                    .await
                    .unwrap();
            });
            text.push_str(&format!(
                "\n[store]\nkind = \"dynamodb\"\ntable = \"{table}\"\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn command(&self, case: &str, stop: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailhound"));
        if self.store == Store::Dynamodb {
            cmd.envs(moto::child_env());
        }
        cmd.current_dir(&self.dir)
            .env_remove("TRAILHOUND_STOP_AT")
            .arg("-q")
            .arg("--config")
            .arg(self.config(case))
            .args(["--state", &format!("{case}.db"), "hunt", "--logs"])
            .arg(&self.logs)
            .args(["--concurrency", "1", "--format", "jsonl", "--out"])
            .arg(format!("{case}.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(stop) = stop {
            cmd.env("TRAILHOUND_STOP_AT", stop);
        }
        cmd
    }

    /// Runs to the end; panics with its stderr unless it succeeds.
    pub fn run(&self, case: &str) {
        let out = self.command(case, None).output().unwrap();
        assert!(
            out.status.success(),
            "{case}: the run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs until the binary says it stopped at `stop`, then kills it with SIGKILL. Returns
    /// whether it got there (a run that ends first never reached the stage that often).
    pub fn kill_at(&self, case: &str, stop: &str) -> bool {
        let mut child = self.command(case, Some(stop)).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut reached = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("trailhound: stopped at ") {
                reached = true;
                break;
            }
        }
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !reached || !status.success(),
            "{case}: a process stopped at {stop} was killed, not finished"
        );
        reached
    }

    pub fn delivered(&self, case: &str) -> Vec<Finding> {
        delivery_check::delivered(&self.dir.join(format!("{case}.jsonl")))
    }
}
