//! Indexer acknowledgement: every request on a channel gets an ack id, and the collector says
//! per id, when polled, whether its events are indexed. Until then they count as not delivered.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};

use super::transport::Transport;

/// The longest wait between two polls.
const MAX_POLL_GAP: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Acks {
    pub channel: String,
    pub timeout: Duration,
    pub first_poll: Duration,
}

/// A random GUID for a channel. Uniqueness is all a channel needs, not secrecy.
pub fn new_channel() -> String {
    let n = fastrand::u128(..);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Acks {
    /// Polls until every id in `ids` is acknowledged or the timeout passes. Returns the
    /// acknowledged ids and how many polls it took. A failed poll is only a lost poll: the
    /// next one asks again.
    pub async fn wait(
        &self,
        transport: &Transport,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        ids: &[u64],
    ) -> (HashSet<u64>, u64) {
        let mut acked = HashSet::new();
        let mut polls = 0;
        let deadline = Instant::now() + self.timeout;
        let mut gap = self.first_poll;
        // Poll requests are not compressed.
        let headers: Vec<_> = headers
            .iter()
            .filter(|(n, _)| *n != http::header::CONTENT_ENCODING)
            .cloned()
            .collect();
        loop {
            let waiting: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !acked.contains(id))
                .collect();
            if waiting.is_empty() {
                break;
            }
            let body = serde_json::json!({ "acks": waiting }).to_string();
            polls += 1;
            match transport.post(uri, &headers, Bytes::from(body)).await {
                Ok(answer) if answer.status.is_success() => {
                    acked.extend(acknowledged(&answer.body));
                }
                Ok(answer) => tracing::warn!(
                    status = %answer.status,
                    "acknowledgement poll refused; polling again"
                ),
                Err(e) => tracing::warn!(error = %e, "acknowledgement poll failed; polling again"),
            }
            if ids.iter().all(|id| acked.contains(id)) {
                break;
            }
            if Instant::now() + gap > deadline {
                break;
            }
            tokio::time::sleep(gap).await;
            gap = (gap * 2).min(MAX_POLL_GAP);
        }
        (acked, polls)
    }
}

/// The ids a poll's answer, `{"acks":{"0":true,"1":false}}`, says are indexed.
fn acknowledged(body: &[u8]) -> Vec<u64> {
    #[derive(serde::Deserialize)]
    struct Answer {
        acks: BTreeMap<String, bool>,
    }
    serde_json::from_slice::<Answer>(body)
        .map(|a| {
            a.acks
                .into_iter()
                .filter(|(_, done)| *done)
                .filter_map(|(id, _)| id.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_guids() {
        let c = new_channel();
        assert!(crate::config::sinks::is_guid(&c), "{c}");
        assert_ne!(c, new_channel());
    }

    #[test]
    fn poll_answers_are_read() {
        let mut ids = acknowledged(br#"{"acks":{"0":true,"1":false,"7":true}}"#);
        ids.sort();
        assert_eq!(ids, vec![0, 7]);
        assert!(acknowledged(b"not json").is_empty());
    }
}
