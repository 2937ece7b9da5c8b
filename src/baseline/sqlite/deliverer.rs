//! One deliverer at a time per state file: the processes that share a state file take turns at
//! delivering its outbox, so that two runs at once do not both send a finding they both read as
//! pending.
//!
//! The turn is an exclusive lock on a small SQLite file beside the state file
//! (`<state>-delivery.lock`), held in an open `BEGIN EXCLUSIVE` transaction that writes
//! nothing. SQLite's file locks belong to the process: the operating system drops them when the
//! process ends, killed or not, so a crashed deliverer never blocks the next run. A process
//! waiting for its turn waits in SQLite's busy handler, up to [`WAIT`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::baseline::StoreError;

/// How long a process waits for another to finish delivering. A delivery that takes longer
/// is stuck on its sink (HEC retries a request for 5 minutes by default); the waiting run then
/// reports the sink failed and its findings stay pending.
pub const WAIT: Duration = Duration::from_secs(15 * 60);

pub(super) struct Deliverer {
    path: PathBuf,
    /// The lock's connection while this process holds the turn.
    held: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("path", &self.path)
            .field("held", &self.is_held())
            .finish()
    }
}

impl Deliverer {
    /// The turn of the state file at `state`.
    pub(super) fn beside(state: &Path) -> Deliverer {
        let mut name = state.as_os_str().to_os_string();
        name.push("-delivery.lock");
        Deliverer {
            path: PathBuf::from(name),
            held: Mutex::new(None),
        }
    }

    pub(super) fn is_held(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Takes the turn, waiting for another process to finish; does nothing if this process
    /// has it. Blocking: call it from the blocking pool.
    pub(super) fn take(&self) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.is_some() {
            return Ok(());
        }
        let shown = self.path.display();
        let failed = |e: rusqlite::Error| {
            let busy = e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy);
            StoreError::Query(if busy {
                format!(
                    "another trailhound process has been delivering this state file's findings \
                     for over {} minutes (it holds {shown}); what it has not delivered stays \
                     pending for the next run",
                    WAIT.as_secs() / 60
                )
            } else {
                format!("the delivery lock {shown} cannot be taken: {e}")
            })
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(failed)?;
        conn.busy_timeout(WAIT).map_err(failed)?;
        conn.execute_batch("BEGIN EXCLUSIVE").map_err(failed)?;
        *held = Some(conn);
        Ok(())
    }

    /// Gives the turn back, if this process has it.
    pub(super) fn give_back(&self) {
        let taken = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(conn) = taken {
            // Nothing was written; closing the connection ends the transaction and drops the
            // lock even if the rollback fails.
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_process_waits_for_the_turn_until_it_is_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        // Two values stand for two processes: each has its own connection to the lock.
        let first = Deliverer::beside(&state);
        let second = Deliverer::beside(&state);
        first.take().unwrap();
        first.take().unwrap();
        let (done, waiting) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                second.take().unwrap();
                done.send(()).unwrap();
            });
            assert!(
                waiting.recv_timeout(Duration::from_millis(300)).is_err(),
                "the second waits while the first delivers"
            );
            first.give_back();
            waiting
                .recv_timeout(Duration::from_secs(10))
                .expect("the second gets the turn");
        });
        assert!(second.is_held() && !first.is_held());
    }
}
