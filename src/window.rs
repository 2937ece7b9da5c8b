//! Delivery-time windows and how consecutive runs tile time with them.
//!
//! A window is a half-open interval `[start, end)` of CloudTrail *delivery* time. An object
//! belongs to the window that holds its delivery minute, so consecutive windows that share
//! their bounds read every object exactly once, however late the events inside it are.

use serde::{Deserialize, Serialize};

use crate::cloudtrail::{Span, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    /// `None` unless `start < end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Self> {
        (start < end).then_some(Window { start, end })
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    pub fn length(&self) -> Span {
        self.end.since(self.start)
    }

    /// Splits into consecutive pieces that end on day boundaries (UTC midnight), so no piece
    /// spans more than one day: memory per piece stays bounded and each piece maps onto the
    /// date partitions of one day.
    pub fn split_by_day(&self) -> Vec<Window> {
        let mut out = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let next_midnight = start.day_start().saturating_add(Span::days(1));
            let end = next_midnight.min(self.end);
            out.push(Window { start, end });
            start = end;
        }
        out
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// Where an account stands: everything delivered before `watermark` has been hunted; a window
/// up to `pending_end` was started and not committed (the run stopped), and must be re-run with
/// the same end so that it yields the same findings under the same ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub watermark: Option<Timestamp>,
    pub pending_end: Option<Timestamp>,
}

/// What the next hunt of an account covers.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The newest delivery time that is settled: `now − settle`, rounded down to the minute.
    pub settled: Timestamp,
    /// How far back an account's first run reaches.
    pub lookback: Span,
}

impl Plan {
    pub fn new(now: Timestamp, settle: Span, lookback: Span) -> Self {
        Plan {
            settled: now.saturating_sub(settle).floor_to(Span::minutes(1)),
            lookback,
        }
    }

    /// The windows to hunt, oldest first: an unfinished window first (with its original end),
    /// then from the watermark (or the lookback on a first run) to the settled time.
    pub fn windows(&self, cursor: Cursor) -> Vec<Window> {
        let start = cursor
            .watermark
            .unwrap_or_else(|| self.settled.saturating_sub(self.lookback));
        let mut out = Vec::new();
        let mut from = start;
        if let Some(pending) = cursor.pending_end {
            if let Some(w) = Window::new(from, pending) {
                out.extend(w.split_by_day());
                from = pending;
            }
        }
        if let Some(w) = Window::new(from, self.settled) {
            out.extend(w.split_by_day());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn first_run_covers_the_lookback_up_to_the_settled_minute() {
        let plan = Plan::new(t("2024-03-01T12:34:56Z"), Span::minutes(10), Span::hours(2));
        let w = plan.windows(Cursor::default());
        assert_eq!(
            w,
            vec![Window::new(t("2024-03-01T10:24:00Z"), t("2024-03-01T12:24:00Z")).unwrap()]
        );
    }

    #[test]
    fn window_across_midnight_is_split_at_the_day_boundary() {
        let plan = Plan::new(t("2024-03-02T00:30:00Z"), Span::ZERO, Span::hours(1));
        let cursor = Cursor {
            watermark: Some(t("2024-03-01T23:30:00Z")),
            pending_end: None,
        };
        let w = plan.windows(cursor);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].end, t("2024-03-02T00:00:00Z"));
        assert_eq!(w[1].start, t("2024-03-02T00:00:00Z"));
    }

    #[test]
    fn an_unfinished_window_is_redone_with_its_original_end() {
        let plan = Plan::new(t("2024-03-01T15:00:00Z"), Span::ZERO, Span::hours(1));
        let cursor = Cursor {
            watermark: Some(t("2024-03-01T12:00:00Z")),
            pending_end: Some(t("2024-03-01T13:00:00Z")),
        };
        let w = plan.windows(cursor);
        assert_eq!(
            w[0],
            Window::new(t("2024-03-01T12:00:00Z"), t("2024-03-01T13:00:00Z")).unwrap()
        );
        assert_eq!(
            w[1],
            Window::new(t("2024-03-01T13:00:00Z"), t("2024-03-01T15:00:00Z")).unwrap()
        );
    }

    #[test]
    fn consecutive_plans_tile_time_without_gap_or_overlap() {
        // Runs at irregular times; each commits its last window's end as the new watermark.
        let mut cursor = Cursor::default();
        let mut covered: Vec<Window> = Vec::new();
        let mut now = t("2024-03-01T00:07:13Z");
        for step in [3_600, 1_234, 7, 86_400 * 2 + 5, 60, 59, 3_599] {
            let plan = Plan::new(now, Span::minutes(10), Span::hours(6));
            for w in plan.windows(cursor) {
                covered.push(w);
                cursor.watermark = Some(w.end);
            }
            now = now.saturating_add(Span::seconds(step));
        }
        for pair in covered.windows(2) {
            assert_eq!(
                pair[0].end, pair[1].start,
                "gap or overlap between {} and {}",
                pair[0], pair[1]
            );
        }
        assert!(covered.iter().all(|w| w.length() <= Span::days(1)));
    }
}
