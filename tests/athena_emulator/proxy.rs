//! A fault-injecting HTTP proxy on loopback, in front of the emulator, for the AWS calls of a
//! hunt: Athena, DynamoDB and S3. A test scripts how the next calls of an operation are
//! answered (throttling, server errors, slow answers, DynamoDB batches left part unprocessed, S3
//! bodies cut short, query states moto never reports); everything else is forwarded.
//!
//! It can also hold Athena to a quota of active queries, as Athena does (a query it let start
//! stays RUNNING for a while, and a start beyond the quota is refused with
//! `TooManyRequestsException`), and hand each Athena query its own result: moto keeps one
//! queue of results per region, so the proxy registers a query's rows just before the start
//! that takes them, whatever order concurrent hunts start in.
//!
//! It counts the calls of each operation and the bytes of their answers' bodies, which is
//! all the cost model's S3 measurement (`examples/cost_probe.rs`) uses of it.
//!
//! One request per connection, every response `connection: close`, so no framing beyond
//! `content-length` is needed.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy answers instead of the emulator.
#[derive(Clone, Debug)]
pub enum Reply {
    /// HTTP 400 `TooManyRequestsException`, as Athena throttles.
    Throttle,
    /// A `GetQueryExecution` answer in this state.
    State {
        state: &'static str,
        reason: &'static str,
        retryable: bool,
        bytes: u64,
    },
    /// An error of a JSON-protocol service (Athena, DynamoDB): this HTTP status, with this
    /// error code (none: a bare status, as a load balancer answers) and message.
    Error {
        status: u16,
        code: Option<&'static str>,
        message: &'static str,
    },
    /// An S3 (XML) error with this status and code.
    S3Error { status: u16, code: &'static str },
    /// The emulator's answer, this long after the emulator gave it: beyond the client's
    /// timeout, an answer lost after the work was done.
    Slow(Duration),
    /// DynamoDB `BatchGetItem` or `BatchWriteItem`: only the first half of the request goes to
    /// the emulator; the rest comes back as `UnprocessedKeys` or `UnprocessedItems`.
    Unprocessed,
    /// The emulator's answer with its body cut in half under the full `content-length`, as a
    /// connection reset mid-body looks.
    Truncate,
}

impl Reply {
    /// A short name of the fault, for the tallies.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Throttle => "throttle",
            Reply::State { state, .. } if *state == "FAILED" => "query-failed",
            Reply::State { .. } => "state",
            Reply::Error { code, message, .. }
                if code.is_some_and(|c| c.contains("Throttl") || c.contains("Throughput"))
                    || message.contains("Rate exceeded") =>
            {
                "throttle"
            }
            Reply::Error { status, .. } if *status >= 500 => "http-5xx",
            Reply::Error { .. } => "http-4xx",
            Reply::S3Error { status, .. } if *status >= 500 => "http-5xx",
            Reply::S3Error { .. } => "http-4xx",
            Reply::Slow(_) => "slow",
            Reply::Unprocessed => "unprocessed",
            Reply::Truncate => "truncated",
        }
    }
}

/// Athena's quota of active (queued and running) queries, as the proxy enforces it.
struct Quota {
    active: usize,
    running_for: Duration,
    /// When each query the proxy let start stops counting against the quota.
    ends: HashMap<String, Instant>,
    /// Starts let through to the emulator and not yet answered: they hold a slot already, so
    /// that starts arriving together cannot all pass.
    starting: usize,
    refused: usize,
    peak: usize,
}

#[derive(Default)]
struct Shared {
    scripts: HashMap<String, VecDeque<Reply>>,
    seen: HashMap<String, usize>,
    queries: Vec<String>,
    quota: Option<Quota>,
    /// Query text → the emulator's registration body of its result.
    results: HashMap<String, String>,
    /// Faults answered, by (operation, kind).
    injected: BTreeMap<(String, &'static str), usize>,
    /// Bytes of the answers' bodies, by operation.
    body_bytes: HashMap<String, u64>,
}

pub struct Proxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

/// Held from a result's registration to the start that takes it. One for the process: the
/// emulator keeps one queue of results per region, which proxies of one test binary may share.
static REGISTERING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let upstream = host_port(upstream);
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, upstream.clone(), state.clone()));
            }
        });
        Proxy { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers the next calls of `operation` (e.g. `StartQueryExecution`, `BatchGetItem`,
    /// `GetObject`) with `replies`.
    pub fn script(&self, operation: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut s = self.shared.lock().unwrap();
        s.scripts
            .entry(operation.to_string())
            .or_default()
            .extend(replies);
    }

    /// Drops every scripted reply not yet used: the faults stop.
    pub fn calm(&self) {
        self.shared.lock().unwrap().scripts.clear();
    }

    /// From now on, at most `active` queries run at once; each runs for `running_for`, and a
    /// start beyond the quota is refused with `TooManyRequestsException`, as Athena does.
    pub fn limit_active(&self, active: usize, running_for: Duration) {
        self.shared.lock().unwrap().quota = Some(Quota {
            active,
            running_for,
            ends: HashMap::new(),
            starting: 0,
            refused: 0,
            peak: 0,
        });
    }

    /// Starts refused for the quota, and the most queries that were active at once.
    pub fn quota_seen(&self) -> (usize, usize) {
        let s = self.shared.lock().unwrap();
        s.quota.as_ref().map_or((0, 0), |q| (q.refused, q.peak))
    }

    /// Registers `registration` (a body for the emulator's Athena results API) just before
    /// each start of the query `text`, so that the query gets exactly that result.
    pub fn results_for(&self, text: &str, registration: String) {
        self.shared
            .lock()
            .unwrap()
            .results
            .insert(text.to_string(), registration);
    }

    /// How many calls of `operation` arrived.
    pub fn seen(&self, operation: &str) -> usize {
        self.shared
            .lock()
            .unwrap()
            .seen
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Bytes of the bodies of the answers to `operation` (for `GetObject`, the objects' bytes
    /// as stored), whoever answered.
    pub fn body_bytes(&self, operation: &str) -> u64 {
        self.shared
            .lock()
            .unwrap()
            .body_bytes
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// The query strings of every `StartQueryExecution` that arrived.
    pub fn queries(&self) -> Vec<String> {
        self.shared.lock().unwrap().queries.clone()
    }

    /// Faults answered so far, by (operation, kind); the quota's refusals are counted as
    /// `(StartQueryExecution, quota)`.
    pub fn injected(&self) -> BTreeMap<(String, &'static str), usize> {
        let s = self.shared.lock().unwrap();
        let mut out = s.injected.clone();
        if let Some(q) = &s.quota {
            if q.refused > 0 {
                out.insert(("StartQueryExecution".into(), "quota"), q.refused);
            }
        }
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one request: its head (up to the blank line) and its body.
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// The head without the headers named (case-insensitive).
fn without_headers(head: &str, names: &[&str]) -> String {
    head.split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| names.iter().any(|n| k.trim().eq_ignore_ascii_case(n)))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

async fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return respond(502, None, "{}");
    };
    let request = format!(
        "{}\r\nconnection: close\r\n\r\n",
        without_headers(head, &["connection"])
    );
    if up.write_all(request.as_bytes()).await.is_err() || up.write_all(body).await.is_err() {
        return respond(502, None, "{}");
    }
    let mut response = Vec::new();
    if up.read_to_end(&mut response).await.is_err() {
        return respond(502, None, "{}");
    }
    // Keep the emulator's answer, but tell the client the connection closes after it.
    match find(&response, b"\r\n\r\n") {
        Some(i) => {
            let head = String::from_utf8_lossy(&response[..i]).to_string();
            let mut out = format!(
                "{}\r\nconnection: close\r\n\r\n",
                without_headers(&head, &["connection"])
            )
            .into_bytes();
            out.extend_from_slice(&response[i + 4..]);
            out
        }
        None => response,
    }
}

/// Forwards a request whose JSON body is `json` instead of the original.
async fn forward_json(upstream: &str, head: &str, json: &serde_json::Value) -> Vec<u8> {
    let body = json.to_string().into_bytes();
    let head = format!(
        "{}\r\ncontent-length: {}",
        without_headers(head, &["content-length", "x-amz-crc32"]),
        body.len()
    );
    forward(upstream, &head, &body).await
}

/// An answer's head and parsed JSON body.
fn split_answer(answer: &[u8]) -> Option<(String, serde_json::Value)> {
    let i = find(answer, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..i]).to_string();
    let json = serde_json::from_slice(&answer[i + 4..]).ok()?;
    Some((head, json))
}

/// The answer `head` with `json` as its body (content-length and checksum made to fit).
fn with_body(head: &str, json: &serde_json::Value) -> Vec<u8> {
    let body = json.to_string();
    let mut out = format!(
        "{}\r\ncontent-length: {}\r\n\r\n",
        without_headers(head, &["content-length", "x-amz-crc32"]),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn respond(status: u16, error_type: Option<&str>, body: &str) -> Vec<u8> {
    let reason = if status == 200 { "OK" } else { "Error" };
    let error = error_type
        .map(|t| format!("x-amzn-errortype: {t}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\n{error}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn scripted(reply: &Reply, body: &serde_json::Value) -> Vec<u8> {
    match reply {
        Reply::Throttle => respond(
            400,
            Some("TooManyRequestsException"),
            r#"{"__type":"TooManyRequestsException","Message":"Rate exceeded","Reason":"CONCURRENT_QUERY_LIMIT_EXCEEDED"}"#,
        ),
        Reply::Error {
            status,
            code,
            message,
        } => {
            let body = match code {
                Some(code) => serde_json::json!({ "__type": code, "message": message }),
                None => serde_json::json!({ "message": message }),
            };
            respond(*status, *code, &body.to_string())
        }
        Reply::S3Error { status, code } => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error>"
            );
            format!(
                "HTTP/1.1 {status} Error\r\ncontent-type: application/xml\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        Reply::State {
            state,
            reason,
            retryable,
            bytes,
        } => {
            let id = body["QueryExecutionId"].as_str().unwrap_or("unknown");
            let mut status = serde_json::json!({ "State": state });
            if !reason.is_empty() {
                status["StateChangeReason"] = serde_json::json!(reason);
                status["AthenaError"] = serde_json::json!({
                    "ErrorCategory": 2, "ErrorType": 1006,
                    "Retryable": retryable, "ErrorMessage": reason
                });
            }
            let answer = serde_json::json!({
                "QueryExecution": {
                    "QueryExecutionId": id,
                    "Status": status,
                    "Statistics": { "DataScannedInBytes": bytes }
                }
            });
            respond(200, None, &answer.to_string())
        }
        Reply::Slow(_) | Reply::Unprocessed | Reply::Truncate => {
            unreachable!("answered by `serve` itself")
        }
    }
}

/// The operation a request is: the `x-amz-target` suffix of the JSON services, or, for S3's
/// REST calls, the few the hunt makes.
fn operation_of(head: &str) -> String {
    if let Some(target) = header(head, "x-amz-target") {
        return target.rsplit('.').next().unwrap_or("").to_string();
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    // Path-style addressing: /bucket or /bucket/key.
    let has_key = path.trim_start_matches('/').contains('/');
    match method {
        "GET" if query.contains("list-type=2") => "ListObjectsV2",
        "GET" if has_key => "GetObject",
        "GET" => "ListObjects",
        "HEAD" if has_key => "HeadObject",
        "HEAD" => "HeadBucket",
        "PUT" if has_key => "PutObject",
        "PUT" => "CreateBucket",
        _ => "Other",
    }
    .to_string()
}

/// DynamoDB's batch calls with half of the request unprocessed: the first half is forwarded,
/// the rest is handed back as DynamoDB hands back what it did not get to.
async fn partly(upstream: &str, head: &str, operation: &str, json: &serde_json::Value) -> Vec<u8> {
    let (field, left_field) = match operation {
        "BatchGetItem" => ("Keys", "UnprocessedKeys"),
        "BatchWriteItem" => ("", "UnprocessedItems"),
        _ => return forward_json(upstream, head, json).await,
    };
    let mut sent = json.clone();
    let mut left = serde_json::Map::new();
    let Some(tables) = sent["RequestItems"].as_object_mut() else {
        return forward_json(upstream, head, json).await;
    };
    for (table, request) in tables.iter_mut() {
        let list = if field.is_empty() {
            request.as_array_mut()
        } else {
            request[field].as_array_mut()
        };
        let Some(list) = list else { continue };
        if list.len() < 2 {
            continue;
        }
        let rest = list.split_off(list.len() / 2);
        let mut back = request.clone();
        if field.is_empty() {
            back = serde_json::Value::Array(rest);
        } else {
            back[field] = serde_json::Value::Array(rest);
        }
        left.insert(table.clone(), back);
    }
    let answer = forward_json(upstream, head, &sent).await;
    let Some((answer_head, mut body)) = split_answer(&answer) else {
        return answer;
    };
    if !answer_head.starts_with("HTTP/1.1 200") {
        return answer;
    }
    body[left_field] = serde_json::Value::Object(left);
    with_body(&answer_head, &body)
}

/// The answer with its body cut in half under the full `content-length`.
fn truncated(answer: Vec<u8>) -> Vec<u8> {
    match find(&answer, b"\r\n\r\n") {
        Some(i) => {
            let body = answer.len() - (i + 4);
            answer[..i + 4 + body / 2].to_vec()
        }
        None => answer,
    }
}

async fn serve(mut conn: TcpStream, upstream: String, shared: Arc<Mutex<Shared>>) {
    let Some((head, body)) = read_request(&mut conn).await else {
        return;
    };
    let operation = operation_of(&head);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (reply, registration) = {
        let mut s = shared.lock().unwrap();
        *s.seen.entry(operation.clone()).or_default() += 1;
        let reply = s.scripts.get_mut(&operation).and_then(VecDeque::pop_front);
        if let Some(r) = &reply {
            if r.kind() != "state" {
                *s.injected.entry((operation.clone(), r.kind())).or_default() += 1;
            }
        }
        let text = json["QueryString"].as_str();
        if operation == "StartQueryExecution" && reply.is_none() {
            if let Some(q) = text {
                s.queries.push(q.to_string());
            }
        }
        let registration = text.and_then(|q| s.results.get(q).cloned());
        (reply, registration)
    };
    // A slow answer is the ordinary answer, late: the emulator has done the work (a start has
    // started its query, a write is written), as when only a service's answer is lost.
    let (reply, delay) = match reply {
        Some(Reply::Slow(delay)) => (None, Some(delay)),
        other => (other, None),
    };
    let response = match reply {
        Some(Reply::Unprocessed) => partly(&upstream, &head, &operation, &json).await,
        Some(Reply::Truncate) => truncated(forward(&upstream, &head, &body).await),
        Some(r) => scripted(&r, &json),
        None => match quota_reply(&shared, &operation, &json) {
            Some(r) => scripted(&r, &json),
            None if operation == "StartQueryExecution" => {
                // The registration and the start that takes it, with no other start between.
                let _held = REGISTERING.lock().await;
                if let Some(registration) = &registration {
                    let status = post_json(
                        &upstream,
                        "/moto-api/static/athena/query-results",
                        registration,
                    )
                    .await;
                    assert_eq!(status, 201, "the emulator took the query's result");
                }
                let answer = forward(&upstream, &head, &body).await;
                started(&shared, &answer);
                answer
            }
            None => forward(&upstream, &head, &body).await,
        },
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let body = find(&response, b"\r\n\r\n").map_or(0, |i| response.len() - i - 4);
    *shared
        .lock()
        .unwrap()
        .body_bytes
        .entry(operation)
        .or_default() += body as u64;
    let _ = conn.write_all(&response).await;
    let _ = conn.shutdown().await;
}

/// What the quota says instead of the emulator: a refused start, or a query still running.
fn quota_reply(
    shared: &Arc<Mutex<Shared>>,
    operation: &str,
    json: &serde_json::Value,
) -> Option<Reply> {
    let mut s = shared.lock().unwrap();
    let quota = s.quota.as_mut()?;
    let now = Instant::now();
    quota.ends.retain(|_, end| *end > now);
    match operation {
        "StartQueryExecution" => {
            if quota.ends.len() + quota.starting >= quota.active {
                quota.refused += 1;
                return Some(Reply::Throttle);
            }
            quota.starting += 1;
            None
        }
        "GetQueryExecution" => {
            let id = json["QueryExecutionId"].as_str()?;
            quota.ends.contains_key(id).then_some(Reply::State {
                state: "RUNNING",
                reason: "",
                retryable: false,
                bytes: 0,
            })
        }
        _ => None,
    }
}

/// Counts a query the emulator accepted against the quota.
fn started(shared: &Arc<Mutex<Shared>>, answer: &[u8]) {
    let mut s = shared.lock().unwrap();
    let Some(quota) = s.quota.as_mut() else {
        return;
    };
    quota.starting = quota.starting.saturating_sub(1);
    let Some((_, json)) = split_answer(answer) else {
        return;
    };
    if let Some(id) = json["QueryExecutionId"].as_str() {
        quota
            .ends
            .insert(id.to_string(), Instant::now() + quota.running_for);
        quota.peak = quota.peak.max(quota.ends.len());
    }
}

/// POSTs a JSON body to the emulator's own API; returns the HTTP status.
pub async fn post_json(base: &str, path: &str, body: &str) -> u16 {
    let address = host_port(base);
    let mut conn = TcpStream::connect(&address)
        .await
        .expect("emulator reachable");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
