//! Runs rendered Athena SQL on DuckDB through `tests/sql/run_athena_sql.py`, for the tests
//! that prove the SQL (`tests/athena_sql.rs`) and that feed the emulator's Athena the rows
//! that SQL computes (`tests/athena_emulator.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use trailhound::source::athena::ResultTable;

/// The Python of the test venv (DuckDB, sqlglot), from `TRAILHOUND_VENV`.
pub fn venv_python() -> PathBuf {
    let Some(venv) = std::env::var_os("TRAILHOUND_VENV") else {
        panic!(
            "TRAILHOUND_VENV is not set: these tests run the Athena SQL on DuckDB from the test \
             venv. Run scripts/test.sh, or export TRAILHOUND_VENV=$(bash scripts/pyenv.sh)"
        );
    };
    let python = PathBuf::from(venv).join("bin/python");
    assert!(
        python.is_file(),
        "TRAILHOUND_VENV has no bin/python at {}: run bash scripts/pyenv.sh",
        python.display()
    );
    python
}

/// Executes `ddl` in order, loads the objects under `logs` as Athena would read them, runs
/// each of `queries` and returns their results, as Athena's GetQueryResults would give them.
pub fn run(logs: &Path, ddl: &[String], queries: &[String]) -> Vec<ResultTable> {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql/run_athena_sql.py");
    let mut cmd = Command::new(venv_python());
    cmd.arg(&script).arg("--logs").arg(logs);
    for (i, text) in ddl.iter().enumerate() {
        let path = dir.path().join(format!("ddl{i}.sql"));
        std::fs::write(&path, text).expect("write ddl");
        cmd.arg("--ddl").arg(path);
    }
    for (i, text) in queries.iter().enumerate() {
        let path = dir.path().join(format!("query{i}.sql"));
        std::fs::write(&path, text).expect("write query");
        cmd.arg("--query").arg(path);
    }
    let out = cmd.output().expect("run_athena_sql.py starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "run_athena_sql.py failed ({}):\n{stderr}",
        out.status
    );
    let results: Vec<ResultTable> =
        serde_json::from_slice(&out.stdout).expect("run_athena_sql.py prints a JSON array");
    assert_eq!(results.len(), queries.len());
    results
}
