//! A local Splunk HTTP Event Collector (HEC) for integration tests: it speaks enough of the
//! protocol for a real HEC client to be tested against it (tokens, gzip, batches of event
//! envelopes, channels and indexer acknowledgement, keep-alive, TLS), and it can fail the
//! way Splunk does (busy, throttled, connections dropped before or after indexing, slow
//! answers, acknowledgements that never come).
//!
//! The HTTP/1.1 is written by hand on a `TcpListener`, not hyper, for full control over
//! dropped connections and slow answers.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (Splunk's default `max_content_length` is larger; tests
/// have no use for more).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A file of the test-only TLS fixture, `tests/fixtures/tls/<name>` (`ca.pem`,
/// `server.pem`, `server.key`, `other-ca.pem`).
pub fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// How the receiver behaves when no fault is scripted.
#[derive(Clone, Debug)]
pub struct ReceiverOptions {
    /// The valid token (`Authorization: Splunk <token>`).
    pub token: String,
    /// Indexer acknowledgement on: event POSTs need a channel and are answered with an
    /// `ackId`, and the ack endpoint answers.
    pub require_acks: bool,
    /// An ack id answers false to this many polls (that included it), then true.
    pub polls_before_ack: u32,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            token: "test-token-0000".to_string(),
            require_acks: false,
            polls_before_ack: 0,
        }
    }
}

/// What an (authorised) event POST suffers instead of the normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and HEC body {"text":text,"code":hec_code}, with an optional
    /// Retry-After header (seconds). The request's events are NOT indexed.
    Status {
        status: u16,
        text: String,
        hec_code: u32,
        retry_after: Option<u32>,
    },
    /// Read the request, then close the connection without answering. Not indexed.
    Drop,
    /// Index the events, then close the connection without answering (the response was lost).
    DropAfterIndex,
    /// Index the events, then answer (success) only after this delay; a client with a shorter
    /// timeout gives up, yet the events were indexed, as with a slow real Splunk.
    Slow(Duration),
    /// With acks on: index and answer with an ackId that is never acknowledged.
    /// (With acks off: index and answer success, as without a fault.)
    LoseAck,
}

impl Fault {
    /// 503 `{"text":"Server is busy","code":9}`, no Retry-After: what a Splunk whose
    /// indexing queues are full answers.
    pub fn busy() -> Fault {
        Fault::Status {
            status: 503,
            text: "Server is busy".to_string(),
            hec_code: 9,
            retry_after: None,
        }
    }

    /// 429 `{"text":"Too many requests","code":9}` with `Retry-After: retry_after`: what a
    /// throttling front (Splunk Cloud, a load balancer) answers.
    pub fn too_many(retry_after: u32) -> Fault {
        Fault::Status {
            status: 429,
            text: "Too many requests".to_string(),
            hec_code: 9,
            retry_after: Some(retry_after),
        }
    }
}

/// What the receiver has seen and answered.
#[derive(Clone, Debug, Default)]
pub struct ReceiverStats {
    /// POSTs to the event endpoint (all of them, whatever became of them).
    pub event_posts: u32,
    /// POSTs to the ack endpoint.
    pub ack_polls: u32,
    /// Answers sent (or, when the client had already gone, attempted), by status.
    pub by_status: BTreeMap<u16, u32>,
    /// Connections closed without an answer by a `Drop` or `DropAfterIndex` fault.
    pub dropped: u32,
    /// Event POSTs with `Content-Encoding: gzip`.
    pub gzip_posts: u32,
    /// The most events indexed from one POST.
    pub max_events_per_post: usize,
    /// Every channel named by an event or ack POST (header or query).
    pub channels: BTreeSet<String>,
    /// Per event or ack POST, in order: "ok", "missing" or "bad" (never the header itself).
    pub authorization_seen: Vec<String>,
}

type FaultFactory = Arc<dyn Fn() -> Fault + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Fault>,
    every_nth: Option<(u32, FaultFactory)>,
    events: Vec<Value>,
    stats: ReceiverStats,
    acks: HashMap<String, Channel>,
}

#[derive(Default)]
struct Channel {
    next_ack: u64,
    acks: HashMap<u64, Ack>,
}

struct Ack {
    polls: u32,
    lost: bool,
}

struct Shared {
    options: ReceiverOptions,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A Splunk HEC on 127.0.0.1, serving until dropped.
pub struct HecReceiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    task: JoinHandle<()>,
}

impl Drop for HecReceiver {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it ends them all.
        self.task.abort();
    }
}

impl HecReceiver {
    /// Plain HTTP on 127.0.0.1, on a free port.
    pub async fn start(options: ReceiverOptions) -> HecReceiver {
        Self::start_with(options, None).await
    }

    /// HTTPS on 127.0.0.1, on a free port, with the fixture certificate (`server.pem`, for
    /// `localhost` and `127.0.0.1`, signed by `ca.pem`).
    pub async fn start_tls(options: ReceiverOptions) -> HecReceiver {
        let certs = CertificateDer::pem_file_iter(tls_fixture("server.pem"))
            .expect("read tests/fixtures/tls/server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("parse tests/fixtures/tls/server.pem");
        let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key"))
            .expect("read tests/fixtures/tls/server.key");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::start_with(options, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(options: ReceiverOptions, tls: Option<TlsAcceptor>) -> HecReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the HEC receiver");
        let addr = listener.local_addr().expect("HEC receiver address");
        let shared = Arc::new(Shared {
            options,
            state: Mutex::new(State::default()),
        });
        let is_tls = tls.is_some();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), tls));
        HecReceiver {
            shared,
            addr,
            tls: is_tls,
            task,
        }
    }

    /// "http://127.0.0.1:PORT" or "https://localhost:PORT" (no trailing slash, no path).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}", self.addr.port())
        }
    }

    /// The socket address listened on (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends to the queue of faults: each authorised event POST takes the next one; when
    /// the queue is empty, requests succeed (or get the `every_nth` fault).
    pub fn script(&self, faults: Vec<Fault>) {
        self.shared.lock().queue.extend(faults);
    }

    /// A standing fault: the n-th, 2n-th, ... event POST (counted as in
    /// `ReceiverStats::event_posts`, from 1) gets `fault()`, unless the scripted queue
    /// has a fault for it.
    pub fn every_nth(&self, n: u32, fault: impl Fn() -> Fault + Send + Sync + 'static) {
        assert!(n > 0, "every_nth needs n >= 1");
        self.shared.lock().every_nth = Some((n, Arc::new(fault)));
    }

    /// Every indexed event envelope, whole, in arrival order, duplicates included.
    pub fn events(&self) -> Vec<Value> {
        self.shared.lock().events.clone()
    }

    pub fn stats(&self) -> ReceiverStats {
        self.shared.lock().stats.clone()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        match &tls {
            None => {
                connections.spawn(serve(shared, stream));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(shared, stream).await;
                    }
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    has_length: bool,
    /// Close the connection after answering.
    close: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn gzip(&self) -> bool {
        self.header("content-encoding")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
    }

    fn channel(&self) -> Option<String> {
        self.header("x-splunk-request-channel")
            .or_else(|| self.query("channel"))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    }
}

enum ReadOutcome {
    Request(Request),
    /// The client closed (or the connection broke) between or inside requests.
    Closed,
    /// Unreadable request: answer this and close.
    Reject(u16, Value),
}

async fn read_more<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = io.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bad_request(text: &str) -> ReadOutcome {
    ReadOutcome::Reject(400, json!({"text": text, "code": 400}))
}

async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<ReadOutcome> {
    let head_end = loop {
        // Empty lines before a request are to be ignored (RFC 9112 2.2).
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(ReadOutcome::Reject(
                431,
                json!({"text": "Request header fields too large", "code": 431}),
            ));
        }
        if !read_more(io, buf).await? {
            return Ok(ReadOutcome::Closed);
        }
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_end - 4]) else {
        return Ok(bad_request("Request head is not UTF-8"));
    };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Ok(bad_request("Malformed request line"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(bad_request("Malformed header line"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        body: Vec::new(),
        has_length: false,
        close: false,
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let has_token = |t: &str| connection.split(',').any(|c| c.trim() == t);
    request.close = if version.eq_ignore_ascii_case("HTTP/1.0") {
        !has_token("keep-alive")
    } else {
        has_token("close")
    };
    // Chunked bodies are not supported: without a length the stream cannot be followed.
    if request.header("transfer-encoding").is_some() {
        request.close = true;
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => {
                request.has_length = true;
                n
            }
            Err(_) => return Ok(bad_request("Invalid Content-Length")),
        },
    };
    if length > MAX_BODY {
        return Ok(ReadOutcome::Reject(
            413,
            json!({"text": "Content too large", "code": 413}),
        ));
    }
    let total = head_end + length;
    if buf.len() < total
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        io.flush().await?;
    }
    while buf.len() < total {
        if !read_more(io, buf).await? {
            return Ok(ReadOutcome::Closed);
        }
    }
    request.body = buf[head_end..total].to_vec();
    buf.drain(..total);
    Ok(ReadOutcome::Request(request))
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    shared: &Shared,
    io: &mut S,
    answer: &Answer,
    close: bool,
) -> std::io::Result<()> {
    *shared
        .lock()
        .stats
        .by_status
        .entry(answer.status)
        .or_default() += 1;
    let body = answer.body.to_string();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nServer: Splunkd\r\n",
        answer.status,
        reason(answer.status),
        body.len()
    );
    if let Some(seconds) = answer.retry_after {
        out.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    io.write_all(out.as_bytes()).await?;
    io.flush().await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(shared: Arc<Shared>, mut io: S) {
    let mut buf = Vec::new();
    loop {
        let request = match read_request(&mut io, &mut buf).await {
            Ok(ReadOutcome::Request(request)) => request,
            Ok(ReadOutcome::Reject(status, body)) => {
                let _ = respond(&shared, &mut io, &Answer::new(status, body), true).await;
                break;
            }
            Ok(ReadOutcome::Closed) | Err(_) => return,
        };
        match handle(&shared, &request) {
            Action::Drop => {
                shared.lock().stats.dropped += 1;
                break;
            }
            Action::Answer(answer) => {
                if let Some(delay) = answer.delay {
                    tokio::time::sleep(delay).await;
                }
                let close = request.close || answer.close;
                if respond(&shared, &mut io, &answer, close).await.is_err() {
                    return;
                }
                if close {
                    break;
                }
            }
        }
    }
    let _ = io.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// HEC

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u32>,
    delay: Option<Duration>,
    close: bool,
}

impl Answer {
    fn new(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body,
            retry_after: None,
            delay: None,
            close: false,
        }
    }
}

enum Action {
    Answer(Answer),
    /// Close the connection without answering.
    Drop,
}

fn answer(status: u16, body: Value) -> Action {
    Action::Answer(Answer::new(status, body))
}

fn hec_error(status: u16, text: &str, code: u32) -> Action {
    answer(status, json!({"text": text, "code": code}))
}

fn invalid_event(text: &str, code: u32, number: usize) -> Action {
    answer(
        400,
        json!({"text": text, "code": code, "invalid-event-number": number}),
    )
}

fn length_required() -> Action {
    // The body, if any, cannot be skipped without a length: close after answering.
    let mut answer = Answer::new(411, json!({"text": "Length Required", "code": 411}));
    answer.close = true;
    Action::Answer(answer)
}

fn handle(shared: &Shared, request: &Request) -> Action {
    let path = request.path.trim_end_matches('/');
    let post = request.method == "POST";
    match path {
        "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0"
            if post =>
        {
            event_post(shared, request)
        }
        "/services/collector/ack" if post => ack_post(shared, request),
        "/services/collector/health" | "/services/collector/health/1.0" => {
            hec_error(200, "HEC is healthy", 17)
        }
        _ => hec_error(404, "The requested URL was not found on this server.", 404),
    }
}

/// Checks the token and records the outcome; `Some(answer)` when refused.
fn authorise(shared: &Shared, state: &mut State, request: &Request) -> Option<Action> {
    let seen = match request.header("authorization").map(str::trim) {
        None | Some("") => "missing",
        Some(value) => match value.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("splunk")
                    && token.trim() == shared.options.token =>
            {
                "ok"
            }
            _ => "bad",
        },
    };
    state.stats.authorization_seen.push(seen.to_string());
    match seen {
        "missing" => Some(hec_error(401, "Token is required", 2)),
        "bad" => Some(hec_error(403, "Invalid token", 4)),
        _ => None,
    }
}

/// The body, gunzipped when it says so; `Err(())` when the gzip is broken.
fn decoded_body(request: &Request) -> Result<Cow<'_, [u8]>, ()> {
    if !request.gzip() || request.body.is_empty() {
        return Ok(Cow::Borrowed(&request.body));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&request.body[..])
        .read_to_end(&mut out)
        .map_err(|_| ())?;
    Ok(Cow::Owned(out))
}

fn parse_events(request: &Request) -> Result<Vec<Value>, Action> {
    let Ok(data) = decoded_body(request) else {
        return Err(invalid_event("Invalid data format", 6, 0));
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(hec_error(400, "No data", 5));
    }
    let mut events = Vec::new();
    for (i, item) in serde_json::Deserializer::from_slice(&data)
        .into_iter::<Value>()
        .enumerate()
    {
        let Ok(envelope) = item else {
            return Err(invalid_event("Invalid data format", 6, i));
        };
        let Some(fields) = envelope.as_object() else {
            return Err(invalid_event("Invalid data format", 6, i));
        };
        match fields.get("event") {
            None => return Err(invalid_event("Event field is required", 12, i)),
            Some(Value::Null) => return Err(invalid_event("Event field cannot be blank", 13, i)),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(invalid_event("Event field cannot be blank", 13, i))
            }
            Some(_) => {}
        }
        events.push(envelope);
    }
    Ok(events)
}

fn event_post(shared: &Shared, request: &Request) -> Action {
    let channel = request.channel();
    let (fault, factory) = {
        let mut state = shared.lock();
        state.stats.event_posts += 1;
        let number = state.stats.event_posts;
        if request.gzip() {
            state.stats.gzip_posts += 1;
        }
        if let Some(channel) = &channel {
            state.stats.channels.insert(channel.clone());
        }
        if !request.has_length {
            return length_required();
        }
        if let Some(refused) = authorise(shared, &mut state, request) {
            return refused;
        }
        if shared.options.require_acks && channel.is_none() {
            return hec_error(400, "Data channel is missing", 10);
        }
        match state.queue.pop_front() {
            Some(fault) => (Some(fault), None),
            None => match &state.every_nth {
                Some((n, factory)) if number % n == 0 => (None, Some(factory.clone())),
                _ => (None, None),
            },
        }
    };
    // The factory is called outside the lock, in case it looks at the receiver.
    let fault = fault.or_else(|| factory.map(|f| f()));

    match &fault {
        Some(Fault::Status {
            status,
            text,
            hec_code,
            retry_after,
        }) => {
            let mut answer = Answer::new(*status, json!({"text": text, "code": hec_code}));
            answer.retry_after = *retry_after;
            return Action::Answer(answer);
        }
        Some(Fault::Drop) => return Action::Drop,
        _ => {}
    }

    let events = match parse_events(request) {
        Ok(events) => events,
        Err(refused) => return refused,
    };

    let mut body = json!({"text": "Success", "code": 0});
    {
        let mut state = shared.lock();
        let state = &mut *state;
        state.stats.max_events_per_post = state.stats.max_events_per_post.max(events.len());
        state.events.extend(events);
        if shared.options.require_acks {
            let channel = state
                .acks
                .entry(channel.expect("checked above"))
                .or_default();
            let id = channel.next_ack;
            channel.next_ack += 1;
            channel.acks.insert(
                id,
                Ack {
                    polls: 0,
                    lost: matches!(fault, Some(Fault::LoseAck)),
                },
            );
            body["ackId"] = json!(id);
        }
    }

    match fault {
        Some(Fault::DropAfterIndex) => Action::Drop,
        Some(Fault::Slow(delay)) => {
            let mut answer = Answer::new(200, body);
            answer.delay = Some(delay);
            Action::Answer(answer)
        }
        _ => answer(200, body),
    }
}

fn ack_post(shared: &Shared, request: &Request) -> Action {
    let channel = request.channel();
    let mut state = shared.lock();
    let state = &mut *state;
    state.stats.ack_polls += 1;
    if let Some(channel) = &channel {
        state.stats.channels.insert(channel.clone());
    }
    if !request.has_length {
        return length_required();
    }
    if let Some(refused) = authorise(shared, state, request) {
        return refused;
    }
    if !shared.options.require_acks {
        return hec_error(400, "ACK is disabled", 14);
    }
    let Some(channel) = channel else {
        return hec_error(400, "Data channel is missing", 10);
    };
    let ids: Option<Vec<u64>> = decoded_body(request)
        .ok()
        .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
        .and_then(|body| {
            body.get("acks")?
                .as_array()?
                .iter()
                .map(Value::as_u64)
                .collect()
        });
    let Some(ids) = ids else {
        return hec_error(400, "Invalid data format", 6);
    };
    let mut channel = state.acks.get_mut(&channel);
    let mut answers = serde_json::Map::new();
    for id in ids {
        let acked = match channel.as_mut().and_then(|c| c.acks.get_mut(&id)) {
            Some(ack) => {
                let acked = !ack.lost && ack.polls >= shared.options.polls_before_ack;
                ack.polls += 1;
                acked
            }
            None => false,
        };
        answers.insert(id.to_string(), Value::Bool(acked));
    }
    answer(200, json!({"acks": answers}))
}
