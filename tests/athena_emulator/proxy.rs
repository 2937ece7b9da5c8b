//! A fault-injecting HTTP proxy on loopback, in front of the emulator: it answers the Athena
//! calls a test scripts (throttling, query states moto never reports) and forwards the rest.
//! One request per connection, every response `connection: close`, so no framing beyond
//! `content-length` is needed.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

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
}

#[derive(Default)]
struct Shared {
    scripts: HashMap<String, VecDeque<Reply>>,
    seen: HashMap<String, usize>,
    queries: Vec<String>,
}

pub struct Proxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

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

    /// Answers the next calls of `operation` (e.g. `StartQueryExecution`) with `replies`.
    pub fn script(&self, operation: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut s = self.shared.lock().unwrap();
        s.scripts
            .entry(operation.to_string())
            .or_default()
            .extend(replies);
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

    /// The query strings of every `StartQueryExecution` that arrived.
    pub fn queries(&self) -> Vec<String> {
        self.shared.lock().unwrap().queries.clone()
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

fn without_connection_header(head: &str) -> String {
    head.split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
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
        without_connection_header(head)
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
                without_connection_header(&head)
            )
            .into_bytes();
            out.extend_from_slice(&response[i + 4..]);
            out
        }
        None => response,
    }
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
    }
}

async fn serve(mut conn: TcpStream, upstream: String, shared: Arc<Mutex<Shared>>) {
    let Some((head, body)) = read_request(&mut conn).await else {
        return;
    };
    let operation = header(&head, "x-amz-target")
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_string();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let reply = {
        let mut s = shared.lock().unwrap();
        *s.seen.entry(operation.clone()).or_default() += 1;
        let reply = s.scripts.get_mut(&operation).and_then(VecDeque::pop_front);
        if operation == "StartQueryExecution" && !matches!(reply, Some(Reply::Throttle)) {
            if let Some(q) = json["QueryString"].as_str() {
                s.queries.push(q.to_string());
            }
        }
        reply
    };
    let response = match reply {
        Some(r) => scripted(&r, &json),
        None => forward(&upstream, &head, &body).await,
    };
    let _ = conn.write_all(&response).await;
    let _ = conn.shutdown().await;
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
