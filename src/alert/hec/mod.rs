//! The Splunk HTTP Event Collector sink: findings as events, many per gzip request, retried
//! through passing trouble, and, with indexer acknowledgement, counted as delivered only
//! once Splunk says they are indexed. What is not confirmed stays pending in the outbox and
//! goes again with the same finding id, so Splunk can drop repeats (`| dedup event.id`).

mod ack;
mod event;
mod retry;
pub mod token;
mod transport;

use std::collections::VecDeque;
use std::io::Write;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Uri};

use super::{Finding, Sink, SinkError, Stopped};
use crate::config::HecConfig;
use event::{pack, EventMeta};
use retry::{retry_after, verdict, Backoff, HecReply, Verdict};
pub use token::{HecToken, TokenError};
use transport::Transport;
pub use transport::Trust;

const CHANNEL_HEADER: &str = "x-splunk-request-channel";

/// What one collector did during this process: requests, retries and acknowledgements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HecStats {
    pub requests: u64,
    pub retries: u64,
    pub events_sent: u64,
    pub ack_polls: u64,
}

pub struct HecSink {
    name: String,
    event_uri: Uri,
    ack_uri: Uri,
    token: HecToken,
    meta: EventMeta,
    summary_sourcetype: String,
    max_events: usize,
    max_bytes: usize,
    gzip: bool,
    transport: Transport,
    backoff: Backoff,
    acks: Option<ack::Acks>,
    stats: Mutex<HecStats>,
}

/// A request's fate.
enum Sent {
    /// Taken; with acknowledgement on, the id to poll.
    Accepted(Option<u64>),
    /// 413: the collector wants smaller requests.
    TooLarge,
}

impl HecSink {
    /// A sink for the collector `config` describes, with its token already loaded.
    pub fn new(config: &HecConfig, token: HecToken) -> Result<HecSink, SinkError> {
        let name = format!("hec:{}", config.name);
        let fail = |reason: String| SinkError::Setup {
            target: name.clone(),
            reason,
        };
        let base = base_url(&config.url);
        let channel = config.channel.clone().unwrap_or_else(ack::new_channel);
        let event_uri: Uri = format!("{base}/services/collector/event")
            .parse()
            .map_err(|e| fail(format!("url: {e}")))?;
        let ack_uri: Uri = format!("{base}/services/collector/ack?channel={channel}")
            .parse()
            .map_err(|e| fail(format!("url: {e}")))?;
        let trust = match (&config.ca_bundle, config.tls_verify) {
            (_, false) => Trust::Unverified,
            (Some(path), true) => Trust::Bundle(path.clone()),
            (None, true) => Trust::System,
        };
        let https = event_uri.scheme_str() == Some("https");
        if https && matches!(trust, Trust::Unverified) {
            tracing::warn!(
                sink = %name,
                "TLS certificate verification is OFF (tls_verify = false): anyone on the path can read the token and the findings"
            );
        }
        if !https {
            tracing::warn!(sink = %name, "the collector is reached over plain http: the token crosses the network unencrypted");
        }
        let timeout = Duration::from_secs(config.timeout.as_seconds().max(1) as u64);
        // Only https needs the roots; plain http to a local collector works on a machine
        // without any.
        let trust = if https { trust } else { Trust::Unverified };
        let transport = Transport::new(&trust, timeout).map_err(fail)?;
        Ok(HecSink {
            event_uri,
            ack_uri,
            token,
            meta: EventMeta {
                index: config.index.clone(),
                host: config.host.clone(),
                source: config.source.clone(),
                sourcetype: config.sourcetype.clone(),
            },
            summary_sourcetype: config.summary_sourcetype.clone(),
            max_events: config.max_events,
            max_bytes: config.max_bytes,
            gzip: config.gzip,
            transport,
            backoff: Backoff::new(
                Duration::from_millis(config.retry_initial_ms),
                Duration::from_secs(config.retry_for.as_seconds().max(0) as u64),
            ),
            acks: config.acks.then(|| ack::Acks {
                channel: channel.clone(),
                timeout: Duration::from_secs(config.ack_timeout.as_seconds().max(1) as u64),
                first_poll: Duration::from_millis(config.retry_initial_ms),
            }),
            stats: Mutex::new(HecStats::default()),
            name,
        })
    }

    pub fn stats(&self) -> HecStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, change: impl FnOnce(&mut HecStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn error(&self, reason: String) -> SinkError {
        SinkError::Http {
            target: self.name.clone(),
            reason: self.token.scrub(&reason),
        }
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = vec![
            (AUTHORIZATION, self.token.header()),
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ];
        if self.gzip {
            h.push((CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        }
        if let Some(acks) = &self.acks {
            if let Ok(v) = HeaderValue::from_str(&acks.channel) {
                h.push((HeaderName::from_static(CHANNEL_HEADER), v));
            }
        }
        h
    }

    fn body(&self, events: &[Vec<u8>]) -> Result<Bytes, SinkError> {
        let plain: Vec<u8> = events.concat();
        if !self.gzip {
            return Ok(Bytes::from(plain));
        }
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::fast(),
        );
        gz.write_all(&plain)
            .and_then(|()| gz.finish())
            .map(Bytes::from)
            .map_err(|e| self.error(format!("compressing the request: {e}")))
    }

    /// Sends one request, retrying passing trouble within the time budget.
    async fn send(&self, events: &[Vec<u8>]) -> Result<Sent, SinkError> {
        let body = self.body(events)?;
        let headers = self.headers();
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.count(|s| s.requests += 1);
            let (why, asked) = match self
                .transport
                .post(&self.event_uri, &headers, body.clone())
                .await
            {
                Ok(answer) => {
                    let reply = HecReply::parse(&answer.body);
                    match verdict(answer.status) {
                        Verdict::Accepted => {
                            self.count(|s| s.events_sent += events.len() as u64);
                            if self.acks.is_some() && reply.ack_id.is_none() {
                                return Err(self.error(format!(
                                    "the collector took the events but returned no ackId ({}); turn indexer acknowledgement on for this token, or set acks = false",
                                    reply.describe(answer.status)
                                )));
                            }
                            return Ok(Sent::Accepted(reply.ack_id));
                        }
                        Verdict::TooLarge => return Ok(Sent::TooLarge),
                        Verdict::Fatal => {
                            return Err(self.error(format!(
                                "{}; not retried, the findings stay pending",
                                reply.describe(answer.status)
                            )))
                        }
                        Verdict::Retry => {
                            (reply.describe(answer.status), retry_after(&answer.headers))
                        }
                    }
                }
                Err(unanswered) => (unanswered.to_string(), None),
            };
            let spent = started.elapsed();
            let Some(wait) = self.backoff.next(attempt, asked, spent) else {
                return Err(self.error(format!(
                    "gave up after {attempt} attempts in {:.1}s (retry_for): {why}",
                    spent.as_secs_f64()
                )));
            };
            self.count(|s| s.retries += 1);
            tracing::warn!(
                sink = %self.name,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %self.token.scrub(&why),
                "collector request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends `events` in requests within the limits. Returns how many of them, from the
    /// start, the collector took (or acknowledged), and the error that stopped it, if any.
    async fn send_all(&self, events: &[Vec<u8>]) -> (usize, Option<SinkError>) {
        let sizes: Vec<usize> = events.iter().map(Vec::len).collect();
        let mut queue: VecDeque<Range<usize>> =
            pack(&sizes, self.max_events, self.max_bytes).into();
        let mut taken: Vec<(Range<usize>, Option<u64>)> = Vec::new();
        let mut stopped = None;
        while let Some(range) = queue.pop_front() {
            match self.send(&events[range.clone()]).await {
                Ok(Sent::Accepted(ack)) => taken.push((range, ack)),
                Ok(Sent::TooLarge) if range.len() > 1 => {
                    // Halve and go again, in order, so what is taken stays a prefix.
                    let mid = range.start + range.len() / 2;
                    queue.push_front(mid..range.end);
                    queue.push_front(range.start..mid);
                }
                Ok(Sent::TooLarge) => {
                    stopped = Some(self.error(format!(
                        "HTTP 413: one event of {} bytes is larger than the collector accepts; raise max_content_length in its limits.conf",
                        sizes[range.start]
                    )));
                    break;
                }
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        let Some(acks) = &self.acks else {
            return (taken.last().map_or(0, |(r, _)| r.end), stopped);
        };
        let ids: Vec<u64> = taken.iter().filter_map(|(_, a)| *a).collect();
        let (acked, polls) = acks
            .wait(&self.transport, &self.ack_uri, &self.headers(), &ids)
            .await;
        self.count(|s| s.ack_polls += polls);
        let is_acked = |id: &Option<u64>| id.is_some_and(|id| acked.contains(&id));
        let unacked = taken.iter().filter(|(_, id)| !is_acked(id)).count();
        let mut accepted = 0;
        for (range, id) in &taken {
            if !is_acked(id) {
                stopped = stopped.or_else(|| {
                    Some(self.error(format!(
                        "{unacked} request(s) not acknowledged as indexed within {}s (ack_timeout); their findings stay pending",
                        acks.timeout.as_secs()
                    )))
                });
                break;
            }
            accepted = range.end;
        }
        (accepted, stopped)
    }
}

/// The collector's base URL from what the config gave, which may be the endpoint itself.
fn base_url(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    for endpoint in [
        "/services/collector/event/1.0",
        "/services/collector/event",
        "/services/collector",
    ] {
        if let Some(base) = url.strip_suffix(endpoint) {
            return base;
        }
    }
    url
}

#[async_trait]
impl Sink for HecSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// One request's worth; with acknowledgement, ten requests per wait for the acks, so
    /// the wait overlaps indexing instead of following each request.
    fn piece_size(&self) -> usize {
        if self.acks.is_some() {
            self.max_events * 10
        } else {
            self.max_events
        }
    }

    async fn deliver(&self, findings: &[Finding]) -> Result<(), Stopped> {
        let events = findings
            .iter()
            .map(|f| self.meta.finding(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("a finding cannot be encoded: {e}")))?;
        let (accepted, stopped) = self.send_all(&events).await;
        let stats = self.stats();
        tracing::debug!(
            sink = %self.name,
            findings = findings.len(),
            accepted,
            requests = stats.requests,
            retries = stats.retries,
            "delivered to the collector"
        );
        match stopped {
            None => Ok(()),
            Some(error) => Err(Stopped { accepted, error }),
        }
    }

    async fn report_run(&self, summary: &serde_json::Value) -> Result<(), SinkError> {
        let now = crate::cloudtrail::Timestamp::now().unix();
        let event = self
            .meta
            .other(&self.summary_sourcetype, now, summary)
            .map_err(|e| self.error(format!("the run summary cannot be encoded: {e}")))?;
        match self.send_all(&[event]).await {
            (_, Some(e)) => Err(e),
            (_, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_accepts_the_endpoint_too() {
        assert_eq!(base_url("https://s:8088"), "https://s:8088");
        assert_eq!(base_url("https://s:8088/"), "https://s:8088");
        assert_eq!(
            base_url("https://s:8088/services/collector/event"),
            "https://s:8088"
        );
        assert_eq!(
            base_url("https://s/splunk/services/collector"),
            "https://s/splunk"
        );
    }
}
