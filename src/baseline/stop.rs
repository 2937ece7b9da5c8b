//! Named points of a run at which the crash tests stop the process, to prove that the order
//! of the store's writes makes a stop anywhere safe: a re-run delivers every finding, under
//! the same id.
//!
//! `TRAILHOUND_STOP_AT=<point>` (or `<point>@<n>`, the n-th time the point is reached in the
//! process, 1-based) makes the process print `trailhound: stopped at <point>` on stderr and
//! then hang where it stands, holding whatever it holds (an open transaction, findings a sink
//! took but the outbox has not marked), until the test kills it with SIGKILL. The points:
//!
//! - `activity-read`: a window's activity came back from the source; nothing is stored yet;
//! - `detected`: the window's findings are worked out, not yet in the outbox;
//! - `staged`: the findings are in the outbox, the baseline and watermark not yet committed;
//! - `commit`: inside the commit, the baseline written and the watermark not (SQLite: inside
//!   the open transaction);
//! - `delivering`: a sink has taken findings that the outbox has not yet marked delivered.
//!
//! Unset (always, outside the tests), a point costs one look at a value read once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The point a test asked to stop at, and at which arrival.
struct Target {
    point: String,
    nth: u32,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let text = std::env::var("TRAILHOUND_STOP_AT").ok()?;
            let (point, nth) = match text.split_once('@') {
                Some((point, n)) => (point, n.parse().ok()?),
                None => (text.as_str(), 1),
            };
            Some(Target {
                point: point.to_string(),
                nth,
            })
        })
        .as_ref()
}

/// Marks that the run reached `name`; stops the process here if a test asked for it.
pub fn point(name: &str) {
    static REACHED: AtomicU32 = AtomicU32::new(0);
    let Some(target) = target() else {
        return;
    };
    if target.point != name || REACHED.fetch_add(1, Ordering::SeqCst) + 1 != target.nth {
        return;
    }
    eprintln!("trailhound: stopped at {name}");
    // Blocks this thread for good: the work it was doing never finishes, so nothing after
    // this point happens before the test's SIGKILL.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
