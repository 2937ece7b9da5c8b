//! Proves the local Splunk HEC receiver of `tests/common/hec.rs` itself, with raw HTTP/1.1
//! over TCP (and once over TLS), so the HEC client's tests can trust it.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::hec::{tls_fixture, Fault, HecReceiver, ReceiverOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

const AUTH: (&str, &str) = ("Authorization", "Splunk test-token-0000");

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn<S> {
    io: S,
    buf: Vec<u8>,
}

impl Conn<TcpStream> {
    async fn open(hec: &HecReceiver) -> Self {
        Conn {
            io: TcpStream::connect(hec.addr()).await.unwrap(),
            buf: Vec::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Sends a POST; `None` when the server closed without answering.
    async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Reply> {
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.io.write_all(&bytes).await.ok()?;
        self.read_reply().await
    }

    async fn read_more(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        match self.io.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    async fn read_reply(&mut self) -> Option<Reply> {
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            self.read_more().await?;
        };
        let head = String::from_utf8(self.buf[..head_end - 4].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        while self.buf.len() < head_end + length {
            self.read_more().await?;
        }
        let body = serde_json::from_slice(&self.buf[head_end..head_end + length]).unwrap();
        self.buf.drain(..head_end + length);
        Some(Reply {
            status,
            headers,
            body,
        })
    }
}

fn event(n: u32) -> Value {
    json!({"time": 1700000000 + n, "host": "h", "source": "trailhound", "sourcetype": "_json",
           "index": "main", "event": {"n": n}, "fields": {"rule": "r"}})
}

const EVENT_PATH: &str = "/services/collector/event";

#[tokio::test]
async fn gzip_batch_is_indexed_and_connection_is_kept_alive() {
    let hec = HecReceiver::start(ReceiverOptions::default()).await;
    assert!(hec.url().starts_with("http://127.0.0.1:"));
    // Newline-separated, and two objects back to back without a separator.
    let body = format!("{}\n{}{}\n", event(1), event(2), event(3));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();

    let mut conn = Conn::open(&hec).await;
    let reply = conn
        .post(EVENT_PATH, &[AUTH, ("content-encoding", "gzip")], &gz)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"text": "Success", "code": 0}));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(hec.events(), vec![event(1), event(2), event(3)]);

    // Second request on the same connection, other accepted path, query string.
    let reply = conn
        .post(
            "/services/collector?sourcetype=x",
            &[AUTH],
            event(4).to_string().as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(hec.events().len(), 4);

    let stats = hec.stats();
    assert_eq!(stats.event_posts, 2);
    assert_eq!(stats.gzip_posts, 1);
    assert_eq!(stats.max_events_per_post, 3);
    assert_eq!(stats.by_status.get(&200), Some(&2));
    assert_eq!(stats.authorization_seen, ["ok", "ok"]);
}

#[tokio::test]
async fn bad_or_missing_token_is_refused_without_consuming_faults() {
    let hec = HecReceiver::start(ReceiverOptions::default()).await;
    hec.script(vec![Fault::busy()]);
    let mut conn = Conn::open(&hec).await;
    let body = event(1).to_string();
    let reply = conn
        .post(
            EVENT_PATH,
            &[("authorization", "Splunk wrong")],
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!((reply.status, reply.body["code"].clone()), (403, json!(4)));
    let reply = conn.post(EVENT_PATH, &[], body.as_bytes()).await.unwrap();
    assert_eq!((reply.status, reply.body["code"].clone()), (401, json!(2)));
    assert!(hec.events().is_empty());
    // The scripted fault is still there for the first authorised request.
    let reply = conn
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(hec.stats().authorization_seen, ["bad", "missing", "ok"]);
}

#[tokio::test]
async fn scripted_statuses_then_success() {
    let hec = HecReceiver::start(ReceiverOptions::default()).await;
    hec.script(vec![Fault::busy(), Fault::too_many(7)]);
    let mut conn = Conn::open(&hec).await;
    let body = event(1).to_string();
    let reply = conn
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, json!({"text": "Server is busy", "code": 9}));
    assert_eq!(reply.header("retry-after"), None);
    let reply = conn
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert!(hec.events().is_empty());
    let reply = conn
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(hec.events(), vec![event(1)]);
    let stats = hec.stats();
    assert_eq!(stats.by_status.values().sum::<u32>(), 3);
}

#[tokio::test]
async fn drop_closes_without_an_answer() {
    let hec = HecReceiver::start(ReceiverOptions::default()).await;
    hec.script(vec![Fault::Drop, Fault::DropAfterIndex]);
    let body = event(1).to_string();
    assert!(Conn::open(&hec)
        .await
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .is_none());
    assert!(hec.events().is_empty());
    assert!(Conn::open(&hec)
        .await
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .is_none());
    assert_eq!(hec.events(), vec![event(1)]);
    let stats = hec.stats();
    assert_eq!(stats.dropped, 2);
    assert!(stats.by_status.is_empty());
}

#[tokio::test]
async fn acks_are_given_after_polls() {
    let hec = HecReceiver::start(ReceiverOptions {
        require_acks: true,
        polls_before_ack: 1,
        ..ReceiverOptions::default()
    })
    .await;
    hec.script(vec![Fault::LoseAck]);
    let mut conn = Conn::open(&hec).await;
    let body = event(1).to_string();
    let reply = conn
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .unwrap();
    assert_eq!((reply.status, reply.body["code"].clone()), (400, json!(10)));

    let chan = ("X-Splunk-Request-Channel", "c-1");
    let reply = conn
        .post(EVENT_PATH, &[AUTH, chan], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        reply.body,
        json!({"text": "Success", "code": 0, "ackId": 0})
    );
    let reply = conn
        .post(
            &format!("{EVENT_PATH}?channel=c-1"),
            &[AUTH],
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(reply.body["ackId"], json!(1));
    let reply = conn
        .post(
            EVENT_PATH,
            &[AUTH, ("x-splunk-request-channel", "c-2")],
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(reply.body["ackId"], json!(0));

    let poll = br#"{"acks":[0,1,9]}"#;
    let path = "/services/collector/ack?channel=c-1";
    let reply = conn.post(path, &[AUTH], poll).await.unwrap();
    assert_eq!(
        reply.body,
        json!({"acks": {"0": false, "1": false, "9": false}})
    );
    let reply = conn.post(path, &[AUTH], poll).await.unwrap();
    // Id 0 took the LoseAck fault.
    assert_eq!(
        reply.body,
        json!({"acks": {"0": false, "1": true, "9": false}})
    );
    let stats = hec.stats();
    assert_eq!((stats.event_posts, stats.ack_polls), (4, 2));
    assert_eq!(
        stats.channels.into_iter().collect::<Vec<_>>(),
        ["c-1", "c-2"]
    );
    assert_eq!(hec.events().len(), 3);
}

#[tokio::test]
async fn invalid_bodies_are_refused_and_nothing_indexed() {
    let hec = HecReceiver::start(ReceiverOptions::default()).await;
    let mut conn = Conn::open(&hec).await;
    let cases: [(&[u8], Value); 5] = [
        (
            br#"{"event":"ok"} {"event": nope}"#,
            json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 1}),
        ),
        (
            br#"{"event":"ok"}{"host":"h"}"#,
            json!({"text": "Event field is required", "code": 12, "invalid-event-number": 1}),
        ),
        (
            br#"{"event":""}"#,
            json!({"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0}),
        ),
        (b" \n", json!({"text": "No data", "code": 5})),
        (
            br#"{"acks":[0]}"#,
            json!({"text": "ACK is disabled", "code": 14}),
        ),
    ];
    for (i, (body, expected)) in cases.into_iter().enumerate() {
        let path = if i == 4 {
            "/services/collector/ack"
        } else {
            EVENT_PATH
        };
        let reply = conn.post(path, &[AUTH], body).await.unwrap();
        assert_eq!((reply.status, reply.body), (400, expected));
    }
    let reply = conn.post("/nope", &[AUTH], b"{}").await.unwrap();
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (404, json!(404))
    );
    assert!(hec.events().is_empty());
    assert_eq!(hec.stats().by_status.get(&400), Some(&5));
}

#[tokio::test]
async fn slow_answers_after_indexing_and_every_nth_fault() {
    let hec = HecReceiver::start(ReceiverOptions::default()).await;
    hec.script(vec![Fault::Slow(std::time::Duration::from_millis(300))]);
    hec.every_nth(2, Fault::busy);
    let body = event(1).to_string();
    let mut conn = Conn::open(&hec).await;
    let slow = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        conn.post(EVENT_PATH, &[AUTH], body.as_bytes()),
    )
    .await;
    assert!(slow.is_err(), "the client gave up");
    assert_eq!(hec.events().len(), 1, "yet the events were indexed");
    // Posts 2 and 4 get the standing fault, 3 succeeds.
    let mut conn = Conn::open(&hec).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = conn
            .post(EVENT_PATH, &[AUTH], body.as_bytes())
            .await
            .unwrap();
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [503, 200, 503]);
    assert_eq!(hec.events().len(), 2);
}

async fn tls_client(
    hec: &HecReceiver,
    ca: &str,
) -> std::io::Result<Conn<impl AsyncRead + AsyncWrite + Unpin>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls_fixture(ca)).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(hec.addr()).await?;
    let io = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    Ok(Conn {
        io,
        buf: Vec::new(),
    })
}

#[tokio::test]
async fn tls_with_the_fixture_ca() {
    let hec = HecReceiver::start_tls(ReceiverOptions::default()).await;
    assert!(hec.url().starts_with("https://localhost:"));
    assert!(tls_client(&hec, "other-ca.pem").await.is_err());
    let mut conn = tls_client(&hec, "ca.pem").await.unwrap();
    let body = event(1).to_string();
    let reply = conn
        .post(EVENT_PATH, &[AUTH], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(hec.events(), vec![event(1)]);
}
