//! Findings into Splunk HEC through the outbox, against a local collector that fails the way
//! Splunk does: busy, throttled, connections dropped before and after indexing, slow answers,
//! acknowledgements late or lost, requests too large, a bad token, TLS it must or must not
//! trust. Every time: every finding arrives at least once, none under a second id, and what
//! did not arrive is still pending.
//!
//! The findings are real: a hunt of the Invictus Stratus simulation.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::hec::{tls_fixture, Fault, HecReceiver, ReceiverOptions};
use common::{real_data, run, t};
use trailhound::alert::hec::HecToken;
use trailhound::alert::{Finding, HecSink, Sink};
use trailhound::baseline::sqlite::SqliteStore;
use trailhound::baseline::BaselineStore;
use trailhound::cloudtrail::Span;
use trailhound::config::{Config, HecConfig};
use trailhound::detect::Mode;
use trailhound::hunt::Period;
use trailhound::muster;
use trailhound::window::Window;

const TOKEN: &str = "5f1c7c2e-9a4b-4c1d-8e2f-30b0c0ffee11";
const SINK: &str = "hec:splunk";

/// The findings of a hunt of the Invictus set, made once per test binary.
fn findings() -> &'static [Finding] {
    static FINDINGS: OnceLock<Vec<Finding>> = OnceLock::new();
    FINDINGS.get_or_init(|| {
        // Its own runtime: the tests' runtimes are single-threaded and must not block.
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(invictus_findings())
        })
        .join()
        .unwrap()
    })
}

async fn invictus_findings() -> Vec<Finding> {
    let logs = real_data().join("invictus-stratus-simulation");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut config = Config::default();
    config.hunt.min_principal_age = Span::ZERO;
    let learn = Window::new(t("2023-07-10T11:40:00Z"), t("2023-07-10T11:54:00Z")).unwrap();
    let hunt = Window::new(t("2023-07-10T11:54:00Z"), t("2023-07-11T00:00:00Z")).unwrap();
    run(
        &config,
        &store,
        &logs,
        Period::Fixed(learn),
        Mode::Learn,
        &[],
    )
    .await;
    let result = run(&config, &store, &logs, Period::Fixed(hunt), Mode::Hunt, &[]).await;
    assert!(result.findings.len() > 100, "{}", result.findings.len());
    result.findings
}

fn options() -> ReceiverOptions {
    ReceiverOptions {
        token: TOKEN.into(),
        ..Default::default()
    }
}

/// A collector that takes the test token, with no fault scripted yet.
async fn healthy() -> HecReceiver {
    HecReceiver::start(options()).await
}

/// A collector config for the test receiver: small batches so a delivery is many requests,
/// short timeouts and backoff so faults cost milliseconds.
fn collector(url: &str) -> HecConfig {
    HecConfig {
        url: url.to_string(),
        token_env: Some("UNUSED".into()),
        index: Some("aws".into()),
        max_events: 20,
        timeout: Span::seconds(1),
        retry_for: Span::seconds(20),
        retry_initial_ms: 10,
        ack_timeout: Span::seconds(3),
        ..HecConfig::default()
    }
}

fn sink(config: &HecConfig, token: &str) -> Box<dyn Sink> {
    Box::new(HecSink::new(config, HecToken::new(token, "test").unwrap()).unwrap())
}

/// A fresh outbox holding every finding, pending for the collector.
async fn outbox(dir: &tempfile::TempDir) -> SqliteStore {
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    store.stage(findings(), &[SINK.to_string()]).await.unwrap();
    store
}

/// What the collector holds, against what was produced.
#[derive(Debug)]
struct Tally {
    produced: usize,
    received: usize,
    /// Findings that arrived more than once (always under their one id).
    repeated: usize,
    lost: usize,
    /// Facts that arrived under more than one id.
    split: usize,
}

fn tally(receiver: &HecReceiver) -> Tally {
    let produced: BTreeSet<&str> = findings().iter().map(|f| f.id.as_str()).collect();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids_per_fact: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in receiver.events() {
        let f: Finding =
            serde_json::from_value(event["event"].clone()).expect("every event is a whole finding");
        assert_eq!(event["fields"]["finding_id"], f.id.as_str());
        assert_eq!(event["time"], f.first_seen.unix());
        assert_eq!(event["index"], "aws");
        assert_eq!(event["sourcetype"], "trailhound:finding");
        *copies.entry(f.id.clone()).or_default() += 1;
        let fact = format!(
            "{}|{}|{:?}|{}|{}",
            f.kind.name(),
            f.principal.key,
            f.action,
            f.first_seen,
            f.account
        );
        ids_per_fact.entry(fact).or_default().insert(f.id);
    }
    Tally {
        produced: produced.len(),
        received: copies.len(),
        repeated: copies.values().filter(|&&n| n > 1).count(),
        lost: produced
            .iter()
            .filter(|id| !copies.contains_key(**id))
            .count(),
        split: ids_per_fact.values().filter(|ids| ids.len() > 1).count(),
    }
}

/// Delivers until nothing is pending (as `trailhound deliver` after each failed run), at most
/// `runs` times. Returns the failures seen along the way.
async fn deliver_until_done(
    store: &SqliteStore,
    sinks: &[Box<dyn Sink>],
    runs: usize,
) -> Vec<String> {
    let mut failures = Vec::new();
    for _ in 0..runs {
        let (_, failed) = muster::deliver(store, sinks).await;
        failures.extend(failed.into_iter().map(|(_, reason)| reason));
        if store.pending(SINK, 1).await.unwrap().is_empty() {
            break;
        }
    }
    failures
}

/// The common end of every scenario: nothing lost, nothing under two ids, nothing pending.
async fn assert_all_arrived(name: &str, store: &SqliteStore, receiver: &HecReceiver) -> Tally {
    let tally = tally(receiver);
    eprintln!("fault {name}: {tally:?}, collector {:?}", receiver.stats());
    assert_eq!(tally.lost, 0, "{name}: lost findings");
    assert_eq!(tally.split, 0, "{name}: findings under two ids");
    assert_eq!(tally.received, tally.produced, "{name}");
    assert!(
        store.pending(SINK, 1).await.unwrap().is_empty(),
        "{name}: findings left pending"
    );
    tally
}

#[tokio::test]
async fn clean_delivery_is_batched_gzipped_and_complete() {
    let receiver = healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let sinks = vec![sink(&collector(&receiver.url()), TOKEN)];
    let failures = deliver_until_done(&store, &sinks, 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    let tally = assert_all_arrived("none", &store, &receiver).await;
    assert_eq!(
        tally.repeated, 0,
        "a clean delivery sends each finding once"
    );
    let stats = receiver.stats();
    let produced = findings().len() as u32;
    assert_eq!(stats.event_posts, produced.div_ceil(20), "{stats:?}");
    assert_eq!(stats.gzip_posts, stats.event_posts);
    assert_eq!(stats.max_events_per_post, 20);
    // A second delivery has nothing left to send.
    let before = receiver.stats().event_posts;
    deliver_until_done(&store, &sinks, 1).await;
    assert_eq!(receiver.stats().event_posts, before);
}

#[tokio::test]
async fn busy_and_throttled_collectors_are_waited_out() {
    let receiver = healthy().await;
    // Every third request busy, and a throttle that asks for a one-second pause.
    receiver.every_nth(3, Fault::busy);
    receiver.script(vec![Fault::too_many(1), Fault::busy(), Fault::busy()]);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let sinks = vec![sink(&collector(&receiver.url()), TOKEN)];
    let started = std::time::Instant::now();
    let failures = deliver_until_done(&store, &sinks, 1).await;
    assert!(failures.is_empty(), "retries absorb it: {failures:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let tally = assert_all_arrived("503 and 429", &store, &receiver).await;
    assert_eq!(tally.repeated, 0, "refused requests were not indexed");
    let stats = receiver.stats();
    assert!(
        stats.by_status[&503] >= 3 && stats.by_status[&429] == 1,
        "{stats:?}"
    );
}

#[tokio::test]
async fn dropped_connections_and_lost_answers_are_retried_under_the_same_ids() {
    let receiver = healthy().await;
    // Drops before indexing, and drops after (the answer lost: those events arrive twice).
    receiver.every_nth(4, || Fault::Drop);
    receiver.script(vec![
        Fault::DropAfterIndex,
        Fault::Drop,
        Fault::DropAfterIndex,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let sinks = vec![sink(&collector(&receiver.url()), TOKEN)];
    let failures = deliver_until_done(&store, &sinks, 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    let tally = assert_all_arrived("dropped connections", &store, &receiver).await;
    // The first batch was lost after indexing, dropped, then lost after indexing again: its
    // 20 findings arrived three times, under their one id each.
    assert_eq!(tally.repeated, 20);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_resent() {
    let receiver = healthy().await;
    receiver.script(vec![
        Fault::Slow(Duration::from_millis(1500)),
        Fault::Slow(Duration::from_millis(300)),
        Fault::Slow(Duration::from_millis(1500)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let sinks = vec![sink(&collector(&receiver.url()), TOKEN)];
    let failures = deliver_until_done(&store, &sinks, 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    let tally = assert_all_arrived("slow answers", &store, &receiver).await;
    // The two answers slower than the 1 s timeout were indexed, then sent again.
    assert_eq!(tally.repeated, 40);
}

#[tokio::test]
async fn with_acks_only_acknowledged_findings_count_as_delivered() {
    let receiver = HecReceiver::start(ReceiverOptions {
        token: TOKEN.into(),
        require_acks: true,
        polls_before_ack: 1,
    })
    .await;
    // The first batch meets a busy collector, then a lost answer, then goes through; the
    // second goes through; the third is indexed but its acknowledgement never comes.
    let pass = || Fault::Slow(Duration::ZERO);
    receiver.script(vec![
        Fault::busy(),
        Fault::DropAfterIndex,
        pass(),
        pass(),
        Fault::LoseAck,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let config = HecConfig {
        acks: true,
        ..collector(&receiver.url())
    };
    let sinks = vec![sink(&config, TOKEN)];

    let (delivered, failed) = muster::deliver(&store, &sinks).await;
    assert_eq!(failed.len(), 1, "the lost ack is reported: {failed:?}");
    assert!(failed[0].1.contains("not acknowledged"), "{failed:?}");
    // Requests before the unacknowledged one are delivered; it and the rest stay pending.
    assert_eq!(delivered[SINK], 40, "{delivered:?}");
    assert_eq!(
        store.pending(SINK, 10_000).await.unwrap().len(),
        findings().len() - 40
    );
    let failures = deliver_until_done(&store, &sinks, 2).await;
    assert!(failures.is_empty(), "{failures:?}");
    let tally = assert_all_arrived("acks with one lost", &store, &receiver).await;
    assert!(tally.repeated >= 20, "{tally:?}");
    let stats = receiver.stats();
    assert!(stats.ack_polls >= 2, "{stats:?}");
    assert_eq!(stats.channels.len(), 1, "one channel for the whole sink");
}

#[tokio::test]
async fn acks_asked_of_a_collector_without_them_fail_clearly() {
    let receiver = healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let config = HecConfig {
        acks: true,
        ..collector(&receiver.url())
    };
    let (delivered, failed) = muster::deliver(&store, &[sink(&config, TOKEN)]).await;
    assert_eq!(delivered[SINK], 0);
    assert!(failed[0].1.contains("no ackId"), "{failed:?}");
}

#[tokio::test]
async fn a_bad_token_fails_fast_with_hecs_words_and_keeps_everything_pending() {
    let receiver = healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let wrong = "00000000-dead-beef-0000-000000000000";
    let started = std::time::Instant::now();
    let (delivered, failed) =
        muster::deliver(&store, &[sink(&collector(&receiver.url()), wrong)]).await;
    assert!(started.elapsed() < Duration::from_secs(1), "not retried");
    assert_eq!(delivered[SINK], 0);
    let reason = &failed[0].1;
    assert!(
        reason.contains("403") && reason.contains("Invalid token (HEC code 4)"),
        "{reason}"
    );
    assert!(
        !reason.contains(wrong) && !reason.contains(TOKEN),
        "{reason}"
    );
    assert_eq!(receiver.stats().event_posts, 1, "one try, no retries");
    assert_eq!(
        store.pending(SINK, 10_000).await.unwrap().len(),
        findings().len()
    );
    // With the right token, everything goes.
    let failures = deliver_until_done(&store, &[sink(&collector(&receiver.url()), TOKEN)], 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_all_arrived("bad token, then the right one", &store, &receiver).await;
}

#[tokio::test]
async fn a_collector_down_past_the_retry_budget_leaves_the_rest_pending() {
    let receiver = healthy().await;
    // The collector is busy for longer than retry_for.
    receiver.every_nth(1, Fault::busy);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let config = HecConfig {
        retry_for: Span::seconds(1),
        ..collector(&receiver.url())
    };
    let (delivered, failed) = muster::deliver(&store, &[sink(&config, TOKEN)]).await;
    assert_eq!(delivered[SINK], 0);
    assert!(failed[0].1.contains("gave up after"), "{failed:?}");
    assert!(
        failed[0].1.contains("Server is busy (HEC code 9)"),
        "{failed:?}"
    );
    // The collector recovers (a healthy one at another port); the next delivery sends all.
    let receiver_recovered = healthy().await;
    let failures = deliver_until_done(
        &store,
        &[sink(&collector(&receiver_recovered.url()), TOKEN)],
        1,
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_all_arrived("down past retry_for", &store, &receiver_recovered).await;
}

#[tokio::test]
async fn requests_too_large_are_split() {
    let receiver = healthy().await;
    let too_large = || Fault::Status {
        status: 413,
        text: "Content too large".into(),
        hec_code: 413,
        retry_after: None,
    };
    receiver.script(vec![too_large(), too_large()]);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let failures = deliver_until_done(&store, &[sink(&collector(&receiver.url()), TOKEN)], 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_all_arrived("413 too large", &store, &receiver).await;
    assert!(receiver.stats().by_status[&413] == 2);
}

#[tokio::test]
async fn tls_is_verified_against_the_given_authority() {
    let receiver = HecReceiver::start_tls(options()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;

    // A collector signed by an authority we were not told to trust is refused.
    let wrong_ca = HecConfig {
        ca_bundle: Some(tls_fixture("other-ca.pem")),
        retry_for: Span::seconds(1),
        ..collector(&receiver.url())
    };
    let (_, failed) = muster::deliver(&store, &[sink(&wrong_ca, TOKEN)]).await;
    assert!(
        failed[0].1.to_lowercase().contains("certificate"),
        "{failed:?}"
    );
    assert!(receiver.events().is_empty());

    let right_ca = HecConfig {
        ca_bundle: Some(tls_fixture("ca.pem")),
        ..collector(&receiver.url())
    };
    let failures = deliver_until_done(&store, &[sink(&right_ca, TOKEN)], 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_all_arrived("tls with ca_bundle", &store, &receiver).await;
}

#[tokio::test]
async fn tls_verification_can_be_turned_off_explicitly() {
    let receiver = HecReceiver::start_tls(options()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = outbox(&dir).await;
    let unverified = HecConfig {
        tls_verify: false,
        ..collector(&receiver.url())
    };
    let failures = deliver_until_done(&store, &[sink(&unverified, TOKEN)], 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_all_arrived("tls unverified", &store, &receiver).await;
}

#[tokio::test]
async fn two_sinks_keep_their_own_delivery_state() {
    let up = healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    let file = dir.path().join("findings.jsonl");
    let jsonl: Box<dyn Sink> = Box::new(trailhound::alert::JsonlSink::file(&file).unwrap());
    let down = HecConfig {
        name: "down".into(),
        url: "http://127.0.0.1:9".into(), // discard port: nothing listens
        retry_for: Span::seconds(1),
        ..collector("")
    };
    let sinks = vec![
        sink(&collector(&up.url()), TOKEN),
        sink(&down, TOKEN),
        jsonl,
    ];
    let names: Vec<String> = sinks.iter().map(|s| s.name()).collect();
    store.stage(findings(), &names).await.unwrap();
    let (delivered, failed) = muster::deliver(&store, &sinks).await;
    let n = findings().len() as u64;
    assert_eq!(delivered[SINK], n);
    assert_eq!(delivered[&names[2]], n);
    assert_eq!(delivered["hec:down"], 0);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "hec:down");
    assert_eq!(
        store.pending("hec:down", 10_000).await.unwrap().len(),
        findings().len()
    );
    assert!(store.pending(SINK, 1).await.unwrap().is_empty());
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert_eq!(lines, findings().len());
}

#[tokio::test]
async fn a_run_ends_with_its_health_event() {
    let receiver = healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let logs = real_data().join("invictus-stratus-simulation");
    let mut config = Config::default();
    config.hunt.min_principal_age = Span::ZERO;
    let sinks = vec![sink(&collector(&receiver.url()), TOKEN)];
    let hunt = Window::new(t("2023-07-10T11:40:00Z"), t("2023-07-11T00:00:00Z")).unwrap();
    let result = run(
        &config,
        &store,
        &logs,
        Period::Fixed(hunt),
        Mode::Hunt,
        &sinks,
    )
    .await;
    assert!(
        result.sink_failures.is_empty(),
        "{:?}",
        result.sink_failures
    );
    let events = receiver.events();
    let summary = events.last().expect("events arrived");
    assert_eq!(summary["sourcetype"], "trailhound:run");
    let body = &summary["event"];
    assert_eq!(body["event_type"], "run-summary");
    assert_eq!(body["accounts_hunted"], 1);
    assert_eq!(body["findings_delivered"][SINK], result.findings.len());
    let by_level: u64 = body["findings_by_level"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_level, result.findings.len() as u64);
    assert_eq!(events.len(), result.findings.len() + 1);
}
