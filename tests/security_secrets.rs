//! No secret in any output. The real binary runs with marker secrets (a HEC token, AWS access
//! key, secret key and session token) in its environment and, by the mistakes people make, in
//! its config file; every run logs at trace level, and many fail: a collector refusing the
//! token or not there at all, an AWS endpoint that is down, AWS calls the emulator refuses, bad
//! configs, a closed standard output. Everything each run leaves is searched for any piece of
//! any marker: stdout, stderr, the findings file, the SQLite state file and its journal.
//!
//! tests/hec_cli.rs already searches the runs that deliver to HEC with the token from a
//! variable, a file and Secrets Manager, and a 403; this file covers the rest.

mod common;
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::hec::{HecReceiver, ReceiverOptions};
use common::{user_call, write_object};

const HEC_TOKEN: &str = "4e7b1c2a-7e57-4a11-b0b0-5ecre7000042";
const AWS_KEY_ID: &str = "AKIAMARK7E57C0FFEE42";
const AWS_SECRET: &str = "wJalrXUtnMARKER/K7MDENG/bPxRfiCYc0ffee42";
const AWS_SESSION: &str = "IQoJb3JpZ2luX2VjMARKERc0ffee42SessionTokenPart";
const MARKERS: [&str; 4] = [HEC_TOKEN, AWS_KEY_ID, AWS_SECRET, AWS_SESSION];

/// Which marker, if any, has a piece of 12 characters or more in `haystack`, and the text
/// around the first such piece (to say where it leaked).
///
/// The access key id is an identifier, not a secret (CloudTrail itself records it in every
/// event), and the AWS SDK prints it at trace level wherever it prints its `Credentials`
/// (resolved identity, signing parameters), with the secret key and session token redacted.
/// Those lines are the one place it may appear.
fn leaked(haystack: &[u8]) -> Option<(&'static str, String)> {
    let text = String::from_utf8_lossy(haystack);
    let without_identity_lines: String = text
        .lines()
        .filter(|l| {
            !(l.contains("Credentials {")
                && l.contains("secret_access_key:")
                && l.contains("** redacted **"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let searched = |m: &str| {
        if m == AWS_KEY_ID {
            without_identity_lines.as_bytes()
        } else {
            haystack
        }
    };
    MARKERS.into_iter().find_map(|m| {
        let haystack = searched(m);
        m.as_bytes().windows(12).find_map(|piece| {
            let at = haystack.windows(piece.len()).position(|w| w == piece)?;
            let context = &haystack[at.saturating_sub(160)..(at + 60).min(haystack.len())];
            Some((m, String::from_utf8_lossy(context).into_owned()))
        })
    })
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let account = "111122223333";
        write_object(
            &dir.path().join("AWSLogs"),
            account,
            "us-east-1",
            "2024-03-01T10:05:00Z",
            &[
                user_call(
                    account,
                    "alice",
                    "iam.amazonaws.com",
                    "CreateAccessKey",
                    "2024-03-01T10:01:00Z",
                    "e1",
                ),
                user_call(
                    account,
                    "bob",
                    "iam.amazonaws.com",
                    "CreateUser",
                    "2024-03-01T10:02:00Z",
                    "e2",
                ),
            ],
        );
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write config");
        path
    }
}

/// One run: the command, with every marker in its environment and trace logging on.
struct Run<'a> {
    what: &'a str,
    args: Vec<String>,
    config: Option<PathBuf>,
    env: Vec<(&'static str, String)>,
    json_logs: bool,
    close_stdout: bool,
}

impl<'a> Run<'a> {
    fn new(what: &'a str, args: &[&str]) -> Run<'a> {
        Run {
            what,
            args: args.iter().map(|s| s.to_string()).collect(),
            config: None,
            env: Vec::new(),
            json_logs: true,
            close_stdout: false,
        }
    }

    fn config(mut self, path: PathBuf) -> Self {
        self.config = Some(path);
        self
    }

    fn emulator(mut self) -> Self {
        self.env.push(("AWS_ENDPOINT_URL", moto::endpoint()));
        self
    }

    /// Runs it and returns its exit code and everything it left, as bytes.
    fn go(self, setup: &Setup) -> (Option<i32>, String, Vec<u8>) {
        let state = setup.path(&format!("{}.db", self.what.replace(' ', "_")));
        let out_file = setup.path(&format!("{}.jsonl", self.what.replace(' ', "_")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailhound"));
        cmd.current_dir(setup.dir.path())
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .env("TRAILHOUND_HEC_TOKEN", HEC_TOKEN)
            .env("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
            .env("AWS_SESSION_TOKEN", AWS_SESSION)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Nothing here may reach real AWS: a closed port unless the run says otherwise.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            // One attempt per call: a failing call's output is the same, without the waits.
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("-vv")
            .args(["--state".as_ref(), state.as_os_str()]);
        if self.json_logs {
            cmd.args(["--log-format", "json"]);
        }
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.args);
        if self.args.first().is_some_and(|a| a == "hunt") {
            cmd.arg("--out").arg(&out_file);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("trailhound starts");
        if self.close_stdout {
            // Whatever it writes to stdout meets a closed pipe.
            drop(child.stdout.take());
        }
        let out = child.wait_with_output().expect("trailhound runs");
        let mut all = out.stdout.clone();
        all.extend_from_slice(&out.stderr);
        for file in [&state, &out_file] {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = file.as_os_str().to_owned();
                name.push(suffix);
                if let Ok(bytes) = std::fs::read(Path::new(&name)) {
                    all.extend_from_slice(&bytes);
                }
            }
        }
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), stderr, all)
    }
}

const HUNT: &[&str] = &[
    "hunt",
    "--logs",
    "AWSLogs",
    "--format",
    "jsonl",
    "--from",
    "2024-03-01T00:00:00Z",
    "--until",
    "2024-03-02T00:00:00Z",
];

fn hec_config(url: &str, extra: &str) -> String {
    format!(
        "[hunt]\nmin_principal_age = \"0s\"\n\n[[sinks.hec]]\nurl = \"{url}\"\ntimeout = \"2s\"\n\
         retry_for = \"1s\"\nretry_initial_ms = 10\n{extra}\n"
    )
}

#[test]
fn no_marker_secret_appears_in_any_output_of_any_run() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let setup = Setup::new();
    let accepting = rt.block_on(HecReceiver::start(ReceiverOptions {
        token: HEC_TOKEN.into(),
        ..Default::default()
    }));
    let refusing = rt.block_on(HecReceiver::start(ReceiverOptions {
        token: "another-token".into(),
        ..Default::default()
    }));
    let env_token = "token_env = \"TRAILHOUND_HEC_TOKEN\"";
    let athena = "[source]\nkind = \"athena\"\n[trail]\nbucket = \"no-such-trail-bucket\"\n\
                  regions = [\"us-east-1\"]\n[athena]\nquery_timeout = \"10s\"\n";

    // (run, the exit code it must have)
    let runs: Vec<(Run, i32)> = vec![
        (
            Run::new("hec accepted", HUNT)
                .config(setup.config("accepted.toml", &hec_config(&accepting.url(), env_token))),
            0,
        ),
        (
            Run::new("hec refused", HUNT)
                .config(setup.config("refused.toml", &hec_config(&refusing.url(), env_token))),
            2,
        ),
        (
            Run::new("hec not there", HUNT)
                .config(setup.config("down.toml", &hec_config("http://127.0.0.1:9", env_token))),
            2,
        ),
        (
            Run {
                json_logs: false,
                ..Run::new("hec not there text logs", HUNT).config(
                    setup.config("down2.toml", &hec_config("http://127.0.0.1:9", env_token)),
                )
            },
            2,
        ),
        // The token pasted where it does not belong.
        (
            Run::new("token as an unknown key", HUNT).config(setup.config(
                "inline.toml",
                &hec_config(&accepting.url(), &format!("{env_token}\ntoken = \"{HEC_TOKEN}\"")),
            )),
            2,
        ),
        (
            Run::new("token as the variable name", HUNT).config(setup.config(
                "var.toml",
                &hec_config(&accepting.url(), &format!("token_env = \"{HEC_TOKEN}\"")),
            )),
            2,
        ),
        (
            Run::new("token in the url", HUNT).config(setup.config(
                "url.toml",
                &hec_config(&format!("https://splunk:{HEC_TOKEN}@splunk.example.com:8088"), env_token),
            )),
            2,
        ),
        (
            Run::new("token in a typed key", HUNT).config(setup.config(
                "typed.toml",
                &hec_config(&accepting.url(), &format!("{env_token}\ngzip = \"{HEC_TOKEN}\"")),
            )),
            2,
        ),
        // AWS: an endpoint that is down, and calls the emulator refuses.
        (
            Run::new("athena endpoint down", &["tables"])
                .config(setup.config("athena.toml", athena)),
            2,
        ),
        (
            Run::new("athena on the emulator", &["tables"])
                .config(setup.path("athena.toml"))
                .emulator(),
            0,
        ),
        (
            Run::new("organizations on the emulator", &["muster"])
                .config(setup.config(
                    "org.toml",
                    "[muster]\naccounts_from = \"organizations\"\n",
                ))
                .emulator(),
            -1,
        ),
        (
            Run::new("s3 bucket missing", HUNT)
                .config(setup.config(
                    "s3.toml",
                    "[source]\nkind = \"s3\"\n[trail]\nbucket = \"no-such-trail-bucket\"\nregions = [\"us-east-1\"]\n",
                ))
                .emulator(),
            2,
        ),
        (
            Run::new("dynamodb endpoint down", HUNT).config(setup.config(
                "ddb.toml",
                "[store]\nkind = \"dynamodb\"\ntable = \"no-such-table\"\n",
            )),
            2,
        ),
        // Standard output closed under it: whatever it does then, it says no secret.
        (
            Run {
                close_stdout: true,
                ..Run::new("stdout closed", HUNT)
                    .config(setup.path("accepted.toml"))
            },
            -1,
        ),
    ];
    let mut table = Vec::new();
    let mut leaks = Vec::new();
    let mut runs_done = 0;
    for (run, want) in runs {
        let what = run.what.to_string();
        let started = std::time::Instant::now();
        let (code, stderr, all) = run.go(&setup);
        let took = started.elapsed().as_secs_f64();
        if want >= 0 {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            assert_eq!(code, Some(want), "{what}: {tail:?}");
        }
        if let Some((marker, context)) = leaked(&all) {
            leaks.push(format!("{what}: a piece of {marker} in ...{context}..."));
        }
        table.push(format!(
            "{what}: exit {code:?}, {} bytes searched, {took:.1} s",
            all.len()
        ));
        runs_done += 1;
    }
    // What the collectors received: events only, no token in them.
    for receiver in [&accepting, &refusing] {
        let events = serde_json::to_vec(&receiver.events()).expect("events as JSON");
        if let Some((marker, context)) = leaked(&events) {
            leaks.push(format!(
                "HEC events: a piece of {marker} in ...{context}..."
            ));
        }
    }
    assert!(
        !accepting.events().is_empty(),
        "the accepting collector got findings"
    );
    eprintln!("{}", table.join("\n"));
    eprintln!(
        "runs: {runs_done}, markers: {}, leaks: {}",
        MARKERS.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}
