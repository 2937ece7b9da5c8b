//! The JSON lines sink: one finding per line, to standard output or appended to a file.
//!
//! A batch counts as delivered only once it is on disk (flushed and `fdatasync`ed), because the
//! outbox forgets a finding for this sink as soon as `deliver` returns `Ok`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{io_failure, Finding, Sink, SinkError, Stopped};

/// Writes findings as JSON lines.
pub struct JsonlSink {
    target: Target,
}

enum Target {
    /// Standard output, or what stands for it in tests.
    Stream(Mutex<Box<dyn Write + Send>>),
    /// An absolute path, opened for each batch so a rotated file is picked up.
    File(PathBuf),
}

impl JsonlSink {
    pub fn stdout() -> Self {
        Self::writer(Box::new(io::stdout()))
    }

    /// Writes to `out` under the name `stdout`, which it stands for (tests capture with it).
    pub fn writer(out: Box<dyn Write + Send>) -> Self {
        JsonlSink {
            target: Target::Stream(Mutex::new(out)),
        }
    }

    /// Appends to the file at `path`, made absolute now so that the sink's name, and with it
    /// the outbox state, does not depend on the directory a later run starts in.
    pub fn file(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref();
        let absolute = std::path::absolute(path).map_err(|e| SinkError::Write {
            target: format!("jsonl:{}", path.display()),
            reason: format!("the path cannot be made absolute: {e}"),
        })?;
        Ok(JsonlSink {
            target: Target::File(absolute),
        })
    }

    /// The file written to, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(p) => Some(p),
            Target::Stream(_) => None,
        }
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> String {
        match &self.target {
            Target::Stream(_) => "stdout".to_string(),
            Target::File(p) => format!("jsonl:{}", p.display()),
        }
    }

    async fn deliver(&self, findings: &[Finding]) -> Result<(), Stopped> {
        let bytes = encode(findings).map_err(|e| SinkError::Write {
            target: self.name(),
            reason: format!("a finding cannot be encoded as JSON: {e}"),
        })?;
        if bytes.is_empty() {
            return Ok(());
        }
        match &self.target {
            Target::Stream(out) => {
                // Poisoning only means another writer panicked; the stream itself is fine.
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                out.write_all(&bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| io_failure("stdout", "writing findings", &e).into())
            }
            Target::File(path) => {
                let path = path.clone();
                let target = self.name();
                // fsync can take long on a busy disk; keep it off the async workers.
                let done = tokio::task::spawn_blocking(move || append(&path, &bytes))
                    .await
                    .map_err(|e| SinkError::Write {
                        target: target.clone(),
                        reason: format!("the writing task stopped: {e}"),
                    })?;
                done.map_err(|(step, e)| io_failure(&target, &step, &e).into())
            }
        }
    }
}

fn encode(findings: &[Finding]) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = Vec::with_capacity(findings.len() * 1024);
    for f in findings {
        serde_json::to_writer(&mut bytes, f)?;
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// Appends whole lines and syncs them. On failure the file is cut back to where it was, so a
/// re-delivery does not follow a torn line; the error names the step that failed.
fn append(path: &Path, bytes: &[u8]) -> Result<(), (String, io::Error)> {
    let at = |step: &str| {
        let step = format!("{step} {}", path.display());
        move |e: io::Error| (step, e)
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(at("creating the folder of"))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(at("opening"))?;
    // `/dev/stdout` or a named pipe can be given as the path too: those cannot be sought,
    // cut or synced, and need none of it.
    let meta = file.metadata().map_err(at("inspecting"))?;
    if !meta.is_file() {
        return file
            .write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(at("writing to"));
    }
    let start = meta.len();
    let fresh_line = ends_mid_line(&mut file, start).map_err(at("reading the end of"))?;
    let written = (|| {
        // A run killed mid-write leaves a last line without its newline; starting on a new
        // line keeps that damage to the one line.
        if fresh_line {
            file.write_all(b"\n")?;
        }
        file.write_all(bytes)?;
        file.flush()?;
        file.sync_data()
    })();
    if let Err(e) = written {
        // Best effort: the write error is what the operator needs to see.
        let _ = file.set_len(start);
        return Err(at("appending to")(e));
    }
    Ok(())
}

fn ends_mid_line(file: &mut File, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::testing::{finding, Captured, ClosedPipe};
    use crate::alert::Level;

    fn batch() -> Vec<Finding> {
        vec![
            finding(91, Level::Critical, "2024-03-01T10:31:00Z"),
            Finding {
                action: None,
                source_ips: Vec::new(),
                ..finding(12, Level::Low, "2024-03-01T10:02:03Z")
            },
        ]
    }

    fn read_back(text: &str) -> Vec<Finding> {
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is one finding"))
            .collect()
    }

    #[tokio::test]
    async fn jsonl_round_trips_findings() {
        let captured = Captured::default();
        let sink = JsonlSink::writer(Box::new(captured.clone()));
        sink.deliver(&batch()).await.expect("memory takes it");
        assert_eq!(read_back(&captured.text()), batch());
        assert_eq!(sink.name(), "stdout");
    }

    #[tokio::test]
    async fn jsonl_appends_across_deliveries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("findings.jsonl");
        let sink = JsonlSink::file(&path).expect("absolute path");
        sink.deliver(&batch()).await.expect("first batch");
        sink.deliver(&batch()[..1]).await.expect("second batch");
        let text = fs::read_to_string(&path).expect("file written");
        let mut expected = batch();
        expected.push(batch()[0].clone());
        assert_eq!(read_back(&text), expected);
    }

    #[tokio::test]
    async fn jsonl_creates_parent_folders() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/c/findings.jsonl");
        let sink = JsonlSink::file(&path).expect("absolute path");
        sink.deliver(&batch()).await.expect("folders made");
        assert_eq!(
            read_back(&fs::read_to_string(&path).expect("written")),
            batch()
        );
    }

    #[tokio::test]
    async fn jsonl_file_sink_is_named_by_absolute_path() {
        let sink = JsonlSink::file("relative/findings.jsonl").expect("cwd exists");
        let path = sink.path().expect("a file sink");
        assert!(path.is_absolute());
        assert_eq!(sink.name(), format!("jsonl:{}", path.display()));
    }

    #[tokio::test]
    async fn torn_last_line_does_not_swallow_the_next_finding() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("findings.jsonl");
        fs::write(&path, b"{\"id\":\"cut off by a kill").expect("seed file");
        let sink = JsonlSink::file(&path).expect("absolute path");
        sink.deliver(&batch()).await.expect("appended");
        let text = fs::read_to_string(&path).expect("written");
        let whole: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(read_back(&whole.join("\n")), batch());
    }

    #[tokio::test]
    async fn closed_stdout_is_an_error_not_a_panic() {
        let sink = JsonlSink::writer(Box::new(ClosedPipe));
        let err = sink.deliver(&batch()).await.expect_err("nobody is reading");
        assert!(err.to_string().contains("closed"), "{err}");
    }

    #[tokio::test]
    async fn unwritable_path_says_which_step_failed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blocker = dir.path().join("not-a-folder");
        fs::write(&blocker, b"").expect("seed file");
        let sink = JsonlSink::file(blocker.join("findings.jsonl")).expect("absolute path");
        let err = sink
            .deliver(&batch())
            .await
            .expect_err("a file is in the way");
        assert!(err.to_string().contains("creating the folder of"), "{err}");
    }
}
