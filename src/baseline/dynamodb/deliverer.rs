//! One deliverer at a time per sink: the processes sharing a table take turns at delivering a
//! sink's queue, so that two runs at once do not both send a finding they both read as
//! pending.
//!
//! The turn is an item (`L#<sink>`, `T`) naming its holder and until when it holds it. It is
//! taken by a conditional update (free, run out, or already ours), kept alive by a heartbeat
//! every third of the lease while held, and given back when the sink's queue is empty. A
//! process that dies holding it (killed, its task stopped) stops beating, and the turn is free
//! again a lease later; a process that waits for a turn polls until then, up to [`WAIT`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::calls::{Conditional, UpdateSpec};
use super::keys::{key, n, s, turn_pk, OWNER, SINK, TURN_SK, UNTIL};
use super::DynamoStore;
use crate::baseline::StoreError;
use crate::cloudtrail::Timestamp;

/// How long a turn lasts without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(20);
/// How long a process waits for another to finish delivering a sink (see the SQLite store's
/// wait: a delivery longer than this is stuck on its sink).
pub const WAIT: Duration = Duration::from_secs(15 * 60);

/// This process's side of the turns: who it is to the other processes, and the turns it holds.
#[derive(Debug)]
pub(super) struct Turns {
    owner: String,
    held: Mutex<HashMap<String, Arc<Held>>>,
}

/// A turn this process holds: its heartbeat stops once it is given back, and says so if
/// another process took it over (the heartbeat came too late).
#[derive(Debug, Default)]
struct Held {
    given_back: AtomicBool,
    lost: AtomicBool,
}

impl Default for Turns {
    fn default() -> Self {
        Turns {
            owner: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            held: Mutex::new(HashMap::new()),
        }
    }
}

impl Turns {
    fn holding(&self, sink: &str) -> Option<Arc<Held>> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(sink)
            .filter(|h| !h.lost.load(Ordering::SeqCst))
            .cloned()
    }
}

impl DynamoStore {
    pub(super) fn holds_turn(&self, sink: &str) -> bool {
        self.turns.holding(sink).is_some()
    }

    /// Takes `sink`'s turn (from a holder whose lease ran out, if need be), or renews it;
    /// `false` when another process holds it.
    async fn try_turn(&self, sink: &str) -> Result<bool, StoreError> {
        let now = Timestamp::now().unix();
        let until = now + LEASE.as_secs() as i64;
        let spec = UpdateSpec {
            key: key(turn_pk(sink), TURN_SK),
            update: "SET #owner = :me, #until = :until, #sink = :sink".to_string(),
            condition: Some(
                "attribute_not_exists(#owner) OR #until < :now OR #owner = :me".to_string(),
            ),
            names: &[OWNER, UNTIL, SINK],
            values: HashMap::from([
                (":me".to_string(), s(self.turns.owner.clone())),
                (":until".to_string(), n(until)),
                (":now".to_string(), n(now)),
                (":sink".to_string(), s(sink)),
            ]),
            returning: false,
        };
        let what = format!("taking the turn to deliver to {sink}");
        Ok(matches!(
            self.update(&what, spec).await?,
            Conditional::Applied(_)
        ))
    }

    /// Waits for `sink`'s turn and takes it, with a heartbeat that keeps it while held.
    pub(super) async fn take_turn(&self, sink: &str) -> Result<(), StoreError> {
        let started = tokio::time::Instant::now();
        while !self.try_turn(sink).await? {
            if started.elapsed() >= WAIT {
                return Err(StoreError::Query(format!(
                    "another trailhound process has been delivering to {sink} for over {} \
                     minutes (table {}); what it has not delivered stays pending for the next \
                     run",
                    WAIT.as_secs() / 60,
                    self.table
                )));
            }
            // Well inside the lease, so that a turn given back is taken soon after.
            tokio::time::sleep(LEASE / 10 + Duration::from_millis(fastrand::u64(0..500))).await;
        }
        let held = Arc::new(Held::default());
        self.turns
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sink.to_string(), held.clone());
        let (store, sink) = (self.clone(), sink.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                if held.given_back.load(Ordering::SeqCst) {
                    return;
                }
                match store.try_turn(&sink).await {
                    Ok(true) => {}
                    // Too late: another process took the turn over. The next `pending`
                    // waits for it again rather than deliver beside it.
                    Ok(false) => {
                        tracing::warn!(
                            sink,
                            "the turn to deliver was taken over by another process"
                        );
                        held.lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    // A heartbeat that fails is tried again at the next beat, within the lease.
                    Err(e) => tracing::warn!(sink, error = %e, "the delivery turn was not renewed"),
                }
            }
        });
        Ok(())
    }

    /// Gives `sink`'s turn back, if this process holds it.
    pub(super) async fn give_back_turn(&self, sink: &str) -> Result<(), StoreError> {
        let taken = self
            .turns
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sink);
        let Some(held) = taken else {
            return Ok(());
        };
        held.given_back.store(true, Ordering::SeqCst);
        let spec = UpdateSpec {
            key: key(turn_pk(sink), TURN_SK),
            update: "REMOVE #owner, #until".to_string(),
            condition: Some("#owner = :me".to_string()),
            names: &[OWNER, UNTIL],
            values: HashMap::from([(":me".to_string(), s(self.turns.owner.clone()))]),
            returning: false,
        };
        // Refused: the turn was taken over already; nothing of ours to give back.
        let what = format!("giving back the turn to deliver to {sink}");
        self.update(&what, spec).await.map(drop)
    }
}
