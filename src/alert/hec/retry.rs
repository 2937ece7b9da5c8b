//! Which answers are worth another try, and how long to wait before it.
//!
//! 429, 5xx, 408, timeouts and broken connections are passing trouble: retried with full-jitter
//! exponential backoff (or after `Retry-After`, when the collector asks for it), until the
//! time budget is spent. 400, 401, 403 and the rest are the request's or the token's fault:
//! retrying cannot help, so they fail at once with the collector's own text and code.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

/// Backoff never grows beyond this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// HEC's answer body: `{"text":"Success","code":0,"ackId":7}`.
#[derive(Debug, Default, Deserialize)]
pub struct HecReply {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default, rename = "ackId")]
    pub ack_id: Option<u64>,
    #[serde(default, rename = "invalid-event-number")]
    pub invalid_event: Option<u64>,
}

impl HecReply {
    pub fn parse(body: &[u8]) -> HecReply {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// "Invalid token (HEC code 4)", or the raw status when the body was not HEC's.
    pub fn describe(&self, status: StatusCode) -> String {
        let mut text = match (&self.text, self.code) {
            (Some(t), Some(c)) => format!("HTTP {status}: {t} (HEC code {c})"),
            (Some(t), None) => format!("HTTP {status}: {t}"),
            _ => format!("HTTP {status}"),
        };
        if let Some(n) = self.invalid_event {
            text.push_str(&format!(", at event {n} of the request"));
        }
        text
    }
}

/// What to do about an answer's status.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Try again later.
    Retry,
    /// The request is larger than the collector takes: send it in smaller pieces.
    TooLarge,
    /// Retrying cannot help.
    Fatal,
}

pub fn verdict(status: StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Accepted,
        408 | 429 => Verdict::Retry,
        413 => Verdict::TooLarge,
        500..=599 => Verdict::Retry,
        _ => Verdict::Fatal,
    }
}

/// `Retry-After` in seconds (the form HEC and the load balancers in front of it use); an
/// HTTP date is ignored in favour of the backoff.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Full-jitter exponential backoff within a time budget.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    budget: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, budget: Duration) -> Backoff {
        Backoff { initial, budget }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1), given what the collector
    /// asked for and how much of the budget is spent; `None` when the budget does not stretch
    /// to another attempt.
    pub fn next(&self, attempt: u32, asked: Option<Duration>, spent: Duration) -> Option<Duration> {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        // Full jitter spreads the retries of many runs hitting one busy collector.
        let jittered = ceiling.mul_f64(fastrand::f64());
        let wait = asked.map_or(jittered, |a| a.max(jittered));
        (spent + wait <= self.budget).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_retry_and_fail() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert_eq!(
                verdict(StatusCode::from_u16(s).unwrap()),
                Verdict::Retry,
                "{s}"
            );
        }
        for s in [400, 401, 403, 404] {
            assert_eq!(
                verdict(StatusCode::from_u16(s).unwrap()),
                Verdict::Fatal,
                "{s}"
            );
        }
        assert_eq!(verdict(StatusCode::PAYLOAD_TOO_LARGE), Verdict::TooLarge);
        assert_eq!(verdict(StatusCode::OK), Verdict::Accepted);
    }

    #[test]
    fn backoff_grows_jitters_and_stops_at_the_budget() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        // Early attempts wait at most 6.4 s, inside the budget.
        for attempt in 1..=7 {
            let wait = b.next(attempt, None, Duration::ZERO).unwrap();
            let ceiling = Duration::from_millis(100) * (1 << (attempt - 1));
            assert!(wait <= ceiling.min(MAX_BACKOFF), "{attempt}: {wait:?}");
        }
        assert!(b.next(1, None, Duration::from_secs(11)).is_none());
        // Retry-After is honoured, and counts against the budget.
        let asked = Duration::from_secs(3);
        assert!(b.next(1, Some(asked), Duration::ZERO).unwrap() >= asked);
        assert!(b.next(1, Some(asked), Duration::from_secs(8)).is_none());
    }

    #[test]
    fn replies_describe_themselves() {
        let r = HecReply::parse(br#"{"text":"Invalid token","code":4}"#);
        assert_eq!(
            r.describe(StatusCode::FORBIDDEN),
            "HTTP 403 Forbidden: Invalid token (HEC code 4)"
        );
        let r = HecReply::parse(b"<html>bad gateway</html>");
        assert_eq!(r.describe(StatusCode::BAD_GATEWAY), "HTTP 502 Bad Gateway");
        let r = HecReply::parse(br#"{"text":"Success","code":0,"ackId":7}"#);
        assert_eq!(r.ack_id, Some(7));
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
