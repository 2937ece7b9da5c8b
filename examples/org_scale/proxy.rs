//! A counting proxy on loopback in front of the emulator, standing in for the AWS endpoints of
//! an hourly run:
//!
//! - every request is counted by service and operation, and the time the emulator takes to
//!   answer is measured (per service, and as the union of the intervals during which it had
//!   at least one request in hand: its busy time);
//! - Athena behaves like Athena in the two ways the emulator does not: a query stays QUEUED,
//!   then RUNNING, for a while before it succeeds, and a `StartQueryExecution` beyond the
//!   active-query quota (queued and running queries both count) is refused with
//!   `TooManyRequestsException`, as Athena refuses it;
//! - each accepted query is classified (activity, rules, other) by its exact text against the
//!   run's plan, and an activity query has its account's result registered in the emulator
//!   just before the emulator sees it start, so that the emulator's queue of results hands
//!   each query its own account's rows whatever order the hunts run in;
//! - each DynamoDB request is logged compactly (which items, how consistent, how large the
//!   written items are) so that capacity can be computed afterwards from item sizes.
//!
//! One request per connection, every answer `connection: close`: no framing beyond
//! `content-length` is needed.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::capacity::{item_size, DdbCall, DdbOp, ItemKey};

/// How long a simulated query spends in each state.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub queued: Duration,
    /// RUNNING lasts a uniformly drawn time in `[running_min, running_max]`.
    pub running_min: Duration,
    pub running_max: Duration,
}

/// What a statement is, by its exact text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Activity,
    Rules,
    Other,
}

/// The statement the run is expected to send for one account and hour.
#[derive(Clone, Copy, Debug)]
pub struct Planned {
    pub account: usize,
    pub hour: usize,
    pub kind: Kind,
}

/// Builds the emulator's registration body (`/moto-api/static/athena/query-results`) for a
/// statement: the planned one's rows, or an empty result shaped like the statement's.
pub type ResultsFor = dyn Fn(Option<Planned>, &str) -> String + Send + Sync;

/// The statements of the run, by a hash of their exact text.
pub struct Plan {
    pub statements: HashMap<u64, Planned>,
    pub results: Box<ResultsFor>,
}

pub fn text_hash(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Per service: calls, answers that were errors, and the time the emulator took.
#[derive(Clone, Debug, Default)]
pub struct ServiceStats {
    pub calls: u64,
    pub errors: u64,
    /// Calls the proxy answered itself (Athena's QUEUED/RUNNING polls and throttles).
    pub answered_here: u64,
    pub emulator_seconds: f64,
}

/// What the proxy saw since the last [`Proxy::take`].
#[derive(Debug, Default)]
pub struct Stats {
    pub services: BTreeMap<&'static str, ServiceStats>,
    pub operations: BTreeMap<(&'static str, String), u64>,
    /// `StartQueryExecution` refused for the quota.
    pub quota_throttles: u64,
    /// Accepted statements by kind.
    pub started: BTreeMap<Kind, u64>,
    /// Accepted statements by (account, hour, kind): the invariant's evidence.
    pub started_by_account: HashMap<(usize, usize, Kind), u32>,
    /// The most queries active at once.
    pub peak_active: usize,
    /// Simulated queued + running time of the accepted statements, summed.
    pub simulated_query_seconds: f64,
    /// Time the emulator had at least one request in hand.
    pub emulator_busy_seconds: f64,
    /// Of the emulator's requests, those the bench itself sent (result registration).
    pub registrations: u64,
    /// Time from a query's end to the poll that found it done, summed, and those polls.
    pub poll_lag_seconds: f64,
    pub polls_done: u64,
    pub ddb: Vec<DdbCall>,
}

struct Execution {
    queued_until: Instant,
    done_at: Instant,
}

#[derive(Default)]
struct Athena {
    /// End times of the queries that count against the quota.
    active: Vec<Instant>,
    executions: HashMap<String, Execution>,
}

#[derive(Default)]
struct Busy {
    inflight: u32,
    since: Option<Instant>,
}

struct Shared {
    upstream: String,
    quota: usize,
    latency: Latency,
    plan: Mutex<Option<Arc<Plan>>>,
    stats: Mutex<Stats>,
    athena: Mutex<Athena>,
    busy: Mutex<Busy>,
    /// Held from a result's registration to the start that takes it.
    registering: tokio::sync::Mutex<()>,
}

pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    /// Serves on `listener` (bound before the runtime started, so that the environment could
    /// name it) in front of the emulator at `upstream` (`host:port`).
    pub fn start(
        listener: std::net::TcpListener,
        upstream: &str,
        quota: usize,
        latency: Latency,
    ) -> Proxy {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            quota,
            latency,
            plan: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
            athena: Mutex::new(Athena::default()),
            busy: Mutex::new(Busy::default()),
            registering: tokio::sync::Mutex::new(()),
        });
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let _ = conn.set_nodelay(true);
                tokio::spawn(serve(conn, state.clone()));
            }
        });
        Proxy { shared }
    }

    pub fn set_plan(&self, plan: Plan) {
        *self.shared.plan.lock().unwrap() = Some(Arc::new(plan));
    }

    /// What was seen since the last call; the counters start again from zero.
    pub fn take(&self) -> Stats {
        std::mem::take(&mut *self.shared.stats.lock().unwrap())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn read_message(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16384];
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
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(end + 4);
    while body.len() < length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// The head without its `connection` header, closed by `connection: close`.
fn closing(head: &str) -> String {
    let mut out: Vec<&str> = head
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    out.push("connection: close");
    format!("{}\r\n\r\n", out.join("\r\n"))
}

fn answer(status: u16, error: Option<&str>, body: &str) -> Vec<u8> {
    let error = error
        .map(|t| format!("x-amzn-errortype: {t}\r\n"))
        .unwrap_or_default();
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\n{error}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status_of(response: &[u8]) -> u16 {
    let line_end = find(response, b"\r\n").unwrap_or(response.len());
    String::from_utf8_lossy(&response[..line_end])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_of(response: &[u8]) -> &[u8] {
    match find(response, b"\r\n\r\n") {
        Some(i) => &response[i + 4..],
        None => &[],
    }
}

impl Shared {
    fn busy_start(&self) {
        let mut b = self.busy.lock().unwrap();
        if b.inflight == 0 {
            b.since = Some(Instant::now());
        }
        b.inflight += 1;
    }

    fn busy_end(&self) {
        let ended = {
            let mut b = self.busy.lock().unwrap();
            b.inflight -= 1;
            if b.inflight == 0 {
                b.since.take().map(|s| s.elapsed())
            } else {
                None
            }
        };
        if let Some(d) = ended {
            self.stats.lock().unwrap().emulator_busy_seconds += d.as_secs_f64();
        }
    }

    /// Sends one request to the emulator and returns its whole answer, closed.
    async fn forward(&self, head: &str, body: &[u8]) -> (Vec<u8>, Duration) {
        self.busy_start();
        let started = Instant::now();
        let response = exchange(&self.upstream, &closing(head), body).await;
        let took = started.elapsed();
        self.busy_end();
        let response = match response {
            Some(r) => match find(&r, b"\r\n\r\n") {
                Some(i) => {
                    let head = String::from_utf8_lossy(&r[..i]).into_owned();
                    let mut out = closing(&head).into_bytes();
                    out.extend_from_slice(&r[i + 4..]);
                    out
                }
                None => r,
            },
            None => answer(502, Some("BadGateway"), "{}"),
        };
        (response, took)
    }

    /// Registers the result of an activity query with the emulator.
    async fn register(&self, body: &str) -> bool {
        let head = format!(
            "POST /moto-api/static/athena/query-results HTTP/1.1\r\nhost: {}\r\n\
             content-type: application/json\r\ncontent-length: {}",
            self.upstream,
            body.len()
        );
        self.busy_start();
        let response = exchange(&self.upstream, &closing(&head), body.as_bytes()).await;
        self.busy_end();
        self.stats.lock().unwrap().registrations += 1;
        response.is_some_and(|r| status_of(&r) == 201)
    }
}

async fn exchange(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await.ok()?;
    let _ = up.set_nodelay(true);
    up.write_all(head.as_bytes()).await.ok()?;
    up.write_all(body).await.ok()?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await.ok()?;
    Some(response)
}

/// Which service a request is for, and its operation.
fn operation(head: &str, body: &[u8]) -> (&'static str, String) {
    if let Some(target) = header(head, "x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let service = match prefix {
            "AmazonAthena" => "athena",
            p if p.starts_with("DynamoDB") => "dynamodb",
            p if p.starts_with("AWSOrganizations") => "organizations",
            _ => "other",
        };
        return (service, op.to_string());
    }
    let text = String::from_utf8_lossy(body);
    if let Some(action) = text
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_string)
    {
        return ("sts", action);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    ("other", path.to_string())
}

async fn serve(mut conn: TcpStream, shared: Arc<Shared>) {
    let Some((head, body)) = read_message(&mut conn).await else {
        return;
    };
    let (service, op) = operation(&head, &body);
    let (response, emulator, here) = match (service, op.as_str()) {
        ("athena", "StartQueryExecution") => start_query(&shared, &head, &body).await,
        ("athena", "GetQueryExecution") => match poll(&shared, &body) {
            Some(r) => (r, Duration::ZERO, true),
            None => {
                let (r, d) = shared.forward(&head, &body).await;
                (r, d, false)
            }
        },
        ("athena", "StopQueryExecution") => {
            stop(&shared, &body);
            let (r, d) = shared.forward(&head, &body).await;
            (r, d, false)
        }
        _ => {
            let (r, d) = shared.forward(&head, &body).await;
            (r, d, false)
        }
    };
    let status = status_of(&response);
    {
        let mut s = shared.stats.lock().unwrap();
        let entry = s.services.entry(service).or_default();
        entry.calls += 1;
        entry.emulator_seconds += emulator.as_secs_f64();
        if here {
            entry.answered_here += 1;
        }
        if status >= 300 {
            entry.errors += 1;
        }
        *s.operations.entry((service, op.clone())).or_default() += 1;
        if service == "dynamodb" {
            if let Some(what) = ddb_op(&op, &body, status, body_of(&response)) {
                let op = DDB_OPS
                    .iter()
                    .find(|o| **o == op)
                    .copied()
                    .unwrap_or("other");
                s.ddb.push(DdbCall { op, what });
            }
        }
    }
    let _ = conn.write_all(&response).await;
    let _ = conn.shutdown().await;
}

fn throttled() -> Vec<u8> {
    answer(
        400,
        Some("TooManyRequestsException"),
        r#"{"__type":"TooManyRequestsException","Message":"You have exceeded the limit for the number of queries you can run concurrently. Please reduce the number of concurrent queries submitted by this account.","Reason":"CONCURRENT_QUERY_LIMIT_EXCEEDED"}"#,
    )
}

async fn start_query(shared: &Arc<Shared>, head: &str, body: &[u8]) -> (Vec<u8>, Duration, bool) {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let sql = json["QueryString"].as_str().unwrap_or("");
    let plan = shared.plan.lock().unwrap().clone();
    let planned = plan
        .as_ref()
        .and_then(|p| p.statements.get(&text_hash(sql)).copied());
    let l = shared.latency;
    let spread = l.running_max.saturating_sub(l.running_min);
    let running = l.running_min + spread.mul_f64(fastrand::f64());
    // Admission: queued and running queries both count against the quota.
    let admitted = {
        let mut a = shared.athena.lock().unwrap();
        let now = Instant::now();
        a.active.retain(|end| *end > now);
        if a.active.len() >= shared.quota {
            None
        } else {
            a.active.push(now + l.queued + running);
            Some((now, a.active.len()))
        }
    };
    let Some((now, active)) = admitted else {
        shared.stats.lock().unwrap().quota_throttles += 1;
        return (throttled(), Duration::ZERO, true);
    };
    // The registration and the start that takes it, with no other start in between.
    let (response, took) = {
        let _turn = shared.registering.lock().await;
        // Every statement gets a result of its own when it starts: the emulator hands a query
        // that has none the next queued result when its results are read, which would be
        // another query's.
        if let Some(plan) = &plan {
            let registration = (plan.results)(planned, sql);
            if !shared.register(&registration).await {
                eprintln!("org_scale: the emulator refused a query result");
            }
        }
        shared.forward(head, body).await
    };
    let ok = status_of(&response) == 200;
    let id = serde_json::from_slice::<serde_json::Value>(body_of(&response))
        .ok()
        .and_then(|v| v["QueryExecutionId"].as_str().map(str::to_string));
    match (ok, id) {
        (true, Some(id)) => {
            shared.athena.lock().unwrap().executions.insert(
                id,
                Execution {
                    queued_until: now + l.queued,
                    done_at: now + l.queued + running,
                },
            );
            let kind = planned.map_or(Kind::Other, |p| p.kind);
            let mut s = shared.stats.lock().unwrap();
            *s.started.entry(kind).or_default() += 1;
            if let Some(p) = planned {
                *s.started_by_account
                    .entry((p.account, p.hour, p.kind))
                    .or_default() += 1;
            }
            s.peak_active = s.peak_active.max(active);
            s.simulated_query_seconds += (l.queued + running).as_secs_f64();
        }
        _ => {
            // Not started after all: the slot is free again.
            let mut a = shared.athena.lock().unwrap();
            let end = now + l.queued + running;
            if let Some(i) = a.active.iter().position(|e| *e == end) {
                a.active.swap_remove(i);
            }
        }
    }
    (response, took, false)
}

/// The state of a query still QUEUED or RUNNING, answered here; `None` once it is done (the
/// emulator, which says SUCCEEDED, answers).
fn poll(shared: &Shared, body: &[u8]) -> Option<Vec<u8>> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = json["QueryExecutionId"].as_str()?;
    let state = {
        let a = shared.athena.lock().unwrap();
        let e = a.executions.get(id)?;
        let now = Instant::now();
        if now < e.queued_until {
            "QUEUED"
        } else if now < e.done_at {
            "RUNNING"
        } else {
            let lag = now - e.done_at;
            drop(a);
            let mut s = shared.stats.lock().unwrap();
            s.poll_lag_seconds += lag.as_secs_f64();
            s.polls_done += 1;
            return None;
        }
    };
    let out = serde_json::json!({
        "QueryExecution": {
            "QueryExecutionId": id,
            "StatementType": "DML",
            "Status": { "State": state },
        }
    });
    Some(answer(200, None, &out.to_string()))
}

fn stop(shared: &Shared, body: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let Some(id) = json["QueryExecutionId"].as_str() else {
        return;
    };
    let mut a = shared.athena.lock().unwrap();
    if let Some(e) = a.executions.get_mut(id) {
        let end = e.done_at;
        let now = Instant::now();
        e.queued_until = now;
        e.done_at = now;
        if let Some(i) = a.active.iter().position(|x| *x == end) {
            a.active.swap_remove(i);
        }
    }
}

fn key_of(key: &serde_json::Value) -> Option<ItemKey> {
    Some(ItemKey::new(
        key["pk"]["S"].as_str()?,
        key["sk"]["S"].as_str()?,
    ))
}

const DDB_OPS: [&str; 8] = [
    "GetItem",
    "BatchGetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "Query",
    "Scan",
];

/// The capacity-relevant facts of one DynamoDB request.
fn ddb_op(op: &str, body: &[u8], status: u16, response: &[u8]) -> Option<DdbOp> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let consistent = json["ConsistentRead"].as_bool().unwrap_or(false);
    // A conditional write that its condition refused still consumes write capacity.
    let refused_or_ok = status < 300
        || String::from_utf8_lossy(response).contains("ConditionalCheckFailedException");
    Some(match op {
        "GetItem" => DdbOp::Get {
            keys: vec![key_of(&json["Key"])?],
            consistent,
        },
        "BatchGetItem" => {
            let mut keys = Vec::new();
            let mut consistent = false;
            for (_, request) in json["RequestItems"].as_object()? {
                consistent |= request["ConsistentRead"].as_bool().unwrap_or(false);
                for k in request["Keys"].as_array()? {
                    keys.extend(key_of(k));
                }
            }
            DdbOp::Get { keys, consistent }
        }
        "PutItem" if refused_or_ok => {
            let item = &json["Item"];
            DdbOp::Write {
                puts: vec![(key_of(item)?, item_size(item))],
                updates: vec![],
                deletes: vec![],
            }
        }
        "UpdateItem" if refused_or_ok => DdbOp::Write {
            puts: vec![],
            updates: vec![key_of(&json["Key"])?],
            deletes: vec![],
        },
        "DeleteItem" if refused_or_ok => DdbOp::Write {
            puts: vec![],
            updates: vec![],
            deletes: vec![key_of(&json["Key"])?],
        },
        "BatchWriteItem" => {
            let (mut puts, mut deletes) = (Vec::new(), Vec::new());
            for (_, writes) in json["RequestItems"].as_object()? {
                for w in writes.as_array()? {
                    if let Some(item) = w.get("PutRequest").map(|p| &p["Item"]) {
                        puts.extend(key_of(item).map(|k| (k, item_size(item))));
                    } else if let Some(key) = w.get("DeleteRequest").map(|d| &d["Key"]) {
                        deletes.extend(key_of(key));
                    }
                }
            }
            DdbOp::Write {
                puts,
                updates: vec![],
                deletes,
            }
        }
        "Query" | "Scan" => {
            let out: serde_json::Value = serde_json::from_slice(response).ok()?;
            let bytes = out["Items"]
                .as_array()
                .map_or(0, |items| items.iter().map(item_size).sum());
            DdbOp::Query { bytes, consistent }
        }
        _ => return None,
    })
}
