//! The contract of [`BaselineStore`]: what every store promises, as one test per behaviour
//! that takes the store as `&dyn BaselineStore` (plus, where a behaviour needs a clock or a
//! look behind the store's back, a [`Backdoor`]). Each store's suite runs every function on a
//! fresh store of its own: the DynamoDB one in `tests/dynamodb_store.rs`, the SQLite one in
//! `src/baseline/sqlite/tests.rs` (its clock-taking methods are private to the crate).
//!
//! The including module provides `th`, the trailhound crate (`use trailhound as th;` in an
//! integration test, `use crate as th;` inside the crate).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::th::alert::{Finding, FindingKind, Level, PrincipalRef, Severity};
use super::th::baseline::{
    BaselineStore, Commit, PairKey, PairState, PairWrite, PrincipalState, StoreError,
};
use super::th::cloudtrail::{AccountId, IdentityType, Timestamp};
use super::th::window::Cursor;

/// What the contract needs done that the trait does not offer: the staging and delivery
/// clock, and raw access to what the store wrote.
#[async_trait]
pub trait Backdoor: Send + Sync {
    /// [`BaselineStore::stage`] with the staging time given.
    async fn stage_at(
        &self,
        findings: &[Finding],
        sinks: &[String],
        at: Timestamp,
    ) -> Result<usize, StoreError>;

    /// [`BaselineStore::mark_delivered`] with the delivery time given.
    async fn mark_delivered_at(
        &self,
        sink: &str,
        ids: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The delivery time of finding `id` to `sink` as stored, if there is one.
    async fn stored_delivery_time(&self, id: &str, sink: &str) -> Option<i64>;

    /// Replaces the stored JSON of finding `id` with `json`, as corruption would.
    async fn overwrite_finding_json(&self, id: &str, json: &str);
}

/// A fresh store under test and its [`Backdoor`], as each suite makes them.
pub trait Subject {
    fn store(&self) -> &dyn BaselineStore;
    fn backdoor(&self) -> &dyn Backdoor;
}

/// Defines one `#[tokio::test]` per named contract function, named as it is, each on a fresh
/// subject from `$subject(test_name).await`. Contract functions that need the [`Backdoor`]
/// are listed after `with backdoor:`. Expects this module in scope as `contract`.
macro_rules! contract_tests {
    ($subject:path; with backdoor: $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let subject = $subject(stringify!($name)).await;
            contract::$name(
                contract::Subject::store(&subject),
                contract::Subject::backdoor(&subject),
            )
            .await;
        }
    )*};
    ($subject:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let subject = $subject(stringify!($name)).await;
            contract::$name(contract::Subject::store(&subject)).await;
        }
    )*};
}

/// The baseline half of the contract that every suite runs as it is. Each suite adds by hand
/// the contract tests it checks further or sizes itself: expired pairs, a window's keys.
macro_rules! baseline_contract_tests {
    ($subject:path) => {
        contract_tests!(
            $subject;
            accounts_and_outcomes_are_remembered_apart,
            pairs_keep_their_earliest_first_seen,
            principals_keep_their_earliest_first_seen_and_give_the_account_history,
            watermark_never_moves_backwards,
            pending_window_is_cleared_by_commit,
            a_first_window_can_be_pending_before_any_watermark,
            rule_states_are_per_account_and_replaced_whole,
        );
    };
}

/// The outbox half of the contract that every suite runs as it is. Each suite adds by hand
/// the contract tests it checks further or builds itself: staging twice, injection, two
/// stores staging at once.
macro_rules! outbox_contract_tests {
    ($subject:path) => {
        contract_tests!(
            $subject;
            a_finding_staged_again_for_a_new_sink_is_owed_to_that_sink_only,
            pending_returns_the_finding_as_staged,
            pending_is_per_sink,
        );
        contract_tests!(
            $subject;
            with backdoor:
            pending_is_oldest_first_and_limited,
            delivery_keeps_its_first_time,
            unreadable_finding_is_corrupt_naming_its_id,
        );
    };
}

pub fn account() -> AccountId {
    AccountId::parse("111122223333").expect("a valid account id")
}

pub fn other_account() -> AccountId {
    AccountId::parse("444455556666").expect("a valid account id")
}

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix(seconds)
}

pub fn key(principal: &str, action: &str) -> PairKey {
    PairKey {
        principal: principal.to_string(),
        action: action.to_string(),
        outcome: "success".to_string(),
    }
}

pub fn state(first_seen: i64, last_seen: i64, count: u64, expires: i64) -> PairState {
    PairState {
        first_seen: at(first_seen),
        last_seen: at(last_seen),
        count,
        days: count.max(1),
        expires: at(expires),
    }
}

pub fn pairs(writes: &[(PairKey, PairState)]) -> Commit {
    Commit {
        pairs: writes
            .iter()
            .map(|(key, state)| PairWrite {
                key: key.clone(),
                state: *state,
            })
            .collect(),
        ..Commit::default()
    }
}

pub fn watermark(seconds: i64) -> Commit {
    Commit {
        watermark: Some(at(seconds)),
        ..Commit::default()
    }
}

/// `n` pairs of principals `p0`.. doing one action, all known until 1000.
pub fn many_pairs(n: usize) -> Vec<(PairKey, PairState)> {
    (0..n)
        .map(|i| (many_key(i), state(1, 2, 3, 1000)))
        .collect()
}

/// The key of the `i`th of [`many_pairs`].
pub fn many_key(i: usize) -> PairKey {
    key(&format!("p{i}"), "s3.amazonaws.com:GetObject")
}

pub fn finding(id: &str) -> Finding {
    Finding {
        id: id.to_string(),
        kind: FindingKind::NewAction,
        title: format!("finding {id}"),
        rule: None,
        account: account(),
        principal: PrincipalRef {
            arn: Some("arn:aws:iam::111122223333:role/Deployer".to_string()),
            kind: IdentityType::AssumedRole,
            key: "arn:aws:iam::111122223333:role/Deployer".to_string(),
        },
        action: Some("iam:CreateAccessKey".to_string()),
        event_source: Some("iam.amazonaws.com".to_string()),
        event_name: Some("CreateAccessKey".to_string()),
        severity: Severity {
            score: 70,
            level: Level::High,
            reasons: Vec::new(),
        },
        first_seen: at(1_700_000_000),
        last_seen: at(1_700_000_060),
        count: 2,
        source_ips: vec!["198.51.100.7".to_string()],
        user_agents: Vec::new(),
        regions: vec!["us-east-1".to_string()],
        error_codes: Vec::new(),
        event_ids: vec!["e1".to_string()],
        window_start: at(1_699_999_200),
        window_end: at(1_700_002_800),
        detected_at: at(1_700_003_000),
    }
}

pub fn sinks(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

/// The pair [`expired_pair_is_unknown_on_read`] stores, expiring at 100.
pub fn expiring_key() -> PairKey {
    key("alice", "iam.amazonaws.com:CreateUser")
}

pub async fn expired_pair_is_unknown_on_read(store: &dyn BaselineStore) {
    let k = expiring_key();
    store
        .commit(&account(), &pairs(&[(k.clone(), state(10, 20, 1, 100))]))
        .await
        .unwrap();

    let before = store
        .known_pairs(&account(), std::slice::from_ref(&k), at(99))
        .await
        .unwrap();
    assert_eq!(before.get(&k), Some(&state(10, 20, 1, 100)));
    for when in [100, 150] {
        let after = store
            .known_pairs(&account(), std::slice::from_ref(&k), at(when))
            .await
            .unwrap();
        assert!(after.is_empty(), "still known at {when}");
    }
}

/// A window's keys come in one call: `stored` of twice as many are known, the rest absent.
pub async fn a_whole_windows_keys_are_answered_in_one_call(
    store: &dyn BaselineStore,
    stored: usize,
) {
    store
        .commit(&account(), &pairs(&many_pairs(stored)))
        .await
        .unwrap();
    let asked: Vec<_> = (0..2 * stored).map(many_key).collect();
    let known = store
        .known_pairs(&account(), &asked, at(500))
        .await
        .unwrap();
    assert_eq!(known.len(), stored);
    assert!(known.contains_key(&many_key(stored - 1)));
    assert!(!known.contains_key(&many_key(stored)));
}

pub async fn accounts_and_outcomes_are_remembered_apart(store: &dyn BaselineStore) {
    let success = key("alice", "iam.amazonaws.com:DeleteRole");
    let denied = PairKey {
        outcome: "denied".to_string(),
        ..success.clone()
    };
    let launched = key("alice", "ec2.amazonaws.com:RunInstances");
    store
        .commit(
            &account(),
            &pairs(&[
                (denied.clone(), state(1, 1, 1, 1000)),
                (launched.clone(), state(1, 1, 1, 1000)),
            ]),
        )
        .await
        .unwrap();
    let all = [success.clone(), denied.clone(), launched.clone()];
    let known = store.known_pairs(&account(), &all, at(5)).await.unwrap();
    assert!(known.contains_key(&denied) && known.contains_key(&launched));
    assert!(!known.contains_key(&success));
    let elsewhere = store
        .known_pairs(&other_account(), &all, at(5))
        .await
        .unwrap();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
}

pub async fn pairs_keep_their_earliest_first_seen(store: &dyn BaselineStore) {
    let k = key("alice", "kms.amazonaws.com:Decrypt");
    let read = || async {
        store
            .known_pairs(&account(), std::slice::from_ref(&k), at(0))
            .await
            .unwrap()[&k]
    };
    store
        .commit(&account(), &pairs(&[(k.clone(), state(50, 60, 4, 1000))]))
        .await
        .unwrap();
    // A TTL refresh: new counts and expiry, and a later first_seen that must not win.
    store
        .commit(&account(), &pairs(&[(k.clone(), state(80, 90, 9, 2000))]))
        .await
        .unwrap();
    assert_eq!(read().await, state(50, 90, 9, 2000));
    // A redone older window may know of an even earlier sighting.
    store
        .commit(&account(), &pairs(&[(k.clone(), state(20, 30, 2, 3000))]))
        .await
        .unwrap();
    assert_eq!(read().await, state(20, 30, 2, 3000));
}

pub async fn principals_keep_their_earliest_first_seen_and_give_the_account_history(
    store: &dyn BaselineStore,
) {
    assert_eq!(store.account_since(&account()).await.unwrap(), None);
    let bob = "arn:aws:iam::111122223333:user/bob".to_string();
    let seen = |first_seen, kind| Commit {
        principals: vec![(
            bob.clone(),
            PrincipalState {
                first_seen: at(first_seen),
                kind,
            },
        )],
        ..Commit::default()
    };
    for (first_seen, kind) in [
        (300, IdentityType::IAMUser),
        (400, IdentityType::Unknown),
        (200, IdentityType::Unknown),
    ] {
        store
            .commit(&account(), &seen(first_seen, kind))
            .await
            .unwrap();
    }
    let known = store
        .known_principals(&account(), &[bob.clone(), "nobody".to_string()])
        .await
        .unwrap();
    assert_eq!(known.len(), 1);
    assert_eq!(
        known[&bob],
        PrincipalState {
            first_seen: at(200),
            kind: IdentityType::IAMUser
        }
    );
    assert_eq!(
        store.account_since(&account()).await.unwrap(),
        Some(at(200))
    );
    assert_eq!(store.account_since(&other_account()).await.unwrap(), None);
}

pub async fn watermark_never_moves_backwards(store: &dyn BaselineStore) {
    assert_eq!(store.cursor(&account()).await.unwrap(), Cursor::default());
    store.commit(&account(), &watermark(500)).await.unwrap();
    store.commit(&account(), &watermark(300)).await.unwrap();
    assert_eq!(
        store.cursor(&account()).await.unwrap().watermark,
        Some(at(500))
    );
    store.commit(&account(), &watermark(700)).await.unwrap();
    assert_eq!(
        store.cursor(&account()).await.unwrap().watermark,
        Some(at(700))
    );
    assert_eq!(
        store.cursor(&other_account()).await.unwrap(),
        Cursor::default()
    );
}

/// Asserts where `account` stands: its watermark and pending window end.
async fn assert_cursor(
    store: &dyn BaselineStore,
    watermark: Option<i64>,
    pending_end: Option<i64>,
) {
    assert_eq!(
        store.cursor(&account()).await.unwrap(),
        Cursor {
            watermark: watermark.map(at),
            pending_end: pending_end.map(at),
        }
    );
}

pub async fn pending_window_is_cleared_by_commit(store: &dyn BaselineStore) {
    store.commit(&account(), &watermark(100)).await.unwrap();
    store.begin_window(&account(), at(300)).await.unwrap();
    assert_cursor(store, Some(100), Some(300)).await;
    // A day-split piece of the window ends before it: the window is still unfinished.
    store.commit(&account(), &watermark(200)).await.unwrap();
    assert_cursor(store, Some(200), Some(300)).await;
    store.commit(&account(), &watermark(300)).await.unwrap();
    assert_cursor(store, Some(300), None).await;
    // A redone window behind the watermark is finished by any commit that reaches it.
    store.begin_window(&account(), at(250)).await.unwrap();
    store.commit(&account(), &watermark(250)).await.unwrap();
    assert_cursor(store, Some(300), None).await;
}

pub async fn a_first_window_can_be_pending_before_any_watermark(store: &dyn BaselineStore) {
    store.begin_window(&account(), at(300)).await.unwrap();
    let pending = Cursor {
        watermark: None,
        pending_end: Some(at(300)),
    };
    assert_eq!(store.cursor(&account()).await.unwrap(), pending);
    // A commit without a watermark (nothing hunted yet) leaves the cursor alone.
    store.commit(&account(), &Commit::default()).await.unwrap();
    assert_eq!(store.cursor(&account()).await.unwrap(), pending);
}

/// Leaves one finding, `f1`, staged for and delivered to `hec`.
pub async fn staging_the_same_finding_twice_keeps_one_and_its_delivery_state(
    store: &dyn BaselineStore,
) {
    let f = finding("f1");
    let hec = sinks(&["hec"]);
    assert_eq!(
        store.stage(std::slice::from_ref(&f), &hec).await.unwrap(),
        1
    );
    store
        .mark_delivered("hec", &["f1".to_string()])
        .await
        .unwrap();

    assert_eq!(store.stage(&[f.clone(), f.clone()], &hec).await.unwrap(), 0);
    assert!(store.pending("hec", 10).await.unwrap().is_empty());
}

pub async fn a_finding_staged_again_for_a_new_sink_is_owed_to_that_sink_only(
    store: &dyn BaselineStore,
) {
    let f = finding("f1");
    store
        .stage(std::slice::from_ref(&f), &sinks(&["hec"]))
        .await
        .unwrap();
    store
        .mark_delivered("hec", &["f1".to_string()])
        .await
        .unwrap();
    assert_eq!(
        store
            .stage(std::slice::from_ref(&f), &sinks(&["hec", "jsonl"]))
            .await
            .unwrap(),
        0
    );
    assert!(store.pending("hec", 10).await.unwrap().is_empty());
    assert_eq!(store.pending("jsonl", 10).await.unwrap(), vec![f]);
}

pub async fn pending_returns_the_finding_as_staged(store: &dyn BaselineStore) {
    let f = finding("f1");
    store
        .stage(std::slice::from_ref(&f), &sinks(&["hec"]))
        .await
        .unwrap();
    assert_eq!(store.pending("hec", 10).await.unwrap(), vec![f]);
}

pub async fn pending_is_per_sink(store: &dyn BaselineStore) {
    store
        .stage(&[finding("f1"), finding("f2")], &sinks(&["hec", "jsonl"]))
        .await
        .unwrap();
    store
        .mark_delivered("hec", &["f1".to_string()])
        .await
        .unwrap();

    assert_eq!(ids(&store.pending("hec", 10).await.unwrap()), ["f2"]);
    assert_eq!(
        ids(&store.pending("jsonl", 10).await.unwrap()),
        ["f1", "f2"]
    );
    // A sink configured after staging is not owed what came before it.
    assert!(store.pending("stdout", 10).await.unwrap().is_empty());
    // Ids not pending for a sink are ignored.
    store
        .mark_delivered("stdout", &["f1".to_string(), "nope".to_string()])
        .await
        .unwrap();
    assert_eq!(
        ids(&store.pending("jsonl", 10).await.unwrap()),
        ["f1", "f2"]
    );
}

pub async fn pending_is_oldest_first_and_limited(store: &dyn BaselineStore, raw: &dyn Backdoor) {
    let hec = sinks(&["hec"]);
    raw.stage_at(&[finding("b")], &hec, at(200)).await.unwrap();
    raw.stage_at(&[finding("c")], &hec, at(100)).await.unwrap();
    raw.stage_at(&[finding("a")], &hec, at(200)).await.unwrap();

    assert_eq!(
        ids(&store.pending("hec", 10).await.unwrap()),
        ["c", "a", "b"]
    );
    assert_eq!(ids(&store.pending("hec", 2).await.unwrap()), ["c", "a"]);
    assert!(store.pending("hec", 0).await.unwrap().is_empty());
}

pub async fn delivery_keeps_its_first_time(store: &dyn BaselineStore, raw: &dyn Backdoor) {
    store
        .stage(&[finding("f1")], &sinks(&["hec"]))
        .await
        .unwrap();
    let f1 = ["f1".to_string()];
    raw.mark_delivered_at("hec", &f1, at(10)).await.unwrap();
    raw.mark_delivered_at("hec", &f1, at(20)).await.unwrap();
    assert_eq!(raw.stored_delivery_time("f1", "hec").await, Some(10));
}

pub async fn unreadable_finding_is_corrupt_naming_its_id(
    store: &dyn BaselineStore,
    raw: &dyn Backdoor,
) {
    store
        .stage(&[finding("f1")], &sinks(&["hec"]))
        .await
        .unwrap();
    raw.overwrite_finding_json("f1", "{\"id\": 1").await;
    match store.pending("hec", 10).await {
        Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, "f1"),
        other => panic!("expected a corrupt finding, got {other:?}"),
    }
}

/// Two stores on the same storage, as two processes would have, stage overlapping batches at
/// once: each finding is new exactly once and pending once.
pub async fn two_stores_staging_at_once_keep_each_finding_once(
    first: Arc<dyn BaselineStore>,
    second: Arc<dyn BaselineStore>,
) {
    let hec = sinks(&["hec"]);
    // Overlapping batches: ids 0..150 and 50..200, in batches of 10.
    let worker = |store: Arc<dyn BaselineStore>, from: usize| {
        let hec = hec.clone();
        async move {
            let mut new = 0;
            let ids: Vec<usize> = (from..from + 150).collect();
            for batch in ids.chunks(10) {
                let findings: Vec<_> = batch.iter().map(|i| finding(&format!("f{i:03}"))).collect();
                new += store.stage(&findings, &hec).await.unwrap();
            }
            new
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(worker(first.clone(), 0)),
        tokio::spawn(worker(second, 50))
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        200,
        "each finding is new exactly once"
    );
    let pending = first.pending("hec", 1000).await.unwrap();
    let unique: HashSet<&str> = ids(&pending).into_iter().collect();
    assert_eq!((pending.len(), unique.len()), (200, 200));
}

/// Leaves exactly one pair stored.
pub async fn values_that_look_like_injection_are_stored_verbatim(store: &dyn BaselineStore) {
    // DynamoDB expression syntax, the DynamoDB store's key separators and escapes, and SQL.
    let tail = "P#a :v #pk = :pk OR attribute_not_exists(pk) %23 '); DROP TABLE pairs; --";
    let evil = format!("x#{tail}");
    let evil = evil.as_str();
    let k = PairKey {
        principal: evil.to_string(),
        action: "#sk = :sk; REMOVE #pk\"; DELETE FROM cursors; --".to_string(),
        outcome: "success' OR '1'='1".to_string(),
    };
    let commit = Commit {
        pairs: vec![PairWrite {
            key: k.clone(),
            state: state(1, 2, 3, 1000),
        }],
        principals: vec![(
            evil.to_string(),
            PrincipalState {
                first_seen: at(1),
                kind: IdentityType::Unknown,
            },
        )],
        rule_states: vec![(evil.to_string(), format!("{{\"v\": \"{evil}'; --\"}}"))],
        watermark: Some(at(10)),
    };
    store.commit(&account(), &commit).await.unwrap();
    let mut f = finding(evil);
    f.title = evil.to_string();
    store
        .stage(std::slice::from_ref(&f), &sinks(&[evil]))
        .await
        .unwrap();

    let known = store
        .known_pairs(&account(), std::slice::from_ref(&k), at(5))
        .await
        .unwrap();
    assert_eq!(known[&k], state(1, 2, 3, 1000));
    let states = store
        .rule_states(&account(), &[evil.to_string()])
        .await
        .unwrap();
    assert_eq!(states[evil], format!("{{\"v\": \"{evil}'; --\"}}"));
    let principals = store
        .known_principals(&account(), &[evil.to_string()])
        .await
        .unwrap();
    assert!(principals.contains_key(evil));
    assert_eq!(store.pending(evil, 10).await.unwrap(), vec![f]);
    store
        .mark_delivered(evil, &[evil.to_string()])
        .await
        .unwrap();
    assert!(store.pending(evil, 10).await.unwrap().is_empty());
    // Separators inside values do not make two pairs meet.
    let shifted = PairKey {
        principal: "x".to_string(),
        action: format!("{tail}#{}", k.action),
        outcome: k.outcome.clone(),
    };
    // An unquoted `'1'='1'` would have matched every pair instead of none.
    let wrong = PairKey {
        outcome: "success".to_string(),
        ..k
    };
    assert!(store
        .known_pairs(&account(), &[wrong, shifted], at(5))
        .await
        .unwrap()
        .is_empty());
}

pub async fn rule_states_are_per_account_and_replaced_whole(store: &dyn BaselineStore) {
    let rules = vec!["r1".to_string(), "r2".to_string(), "absent".to_string()];
    assert!(store
        .rule_states(&account(), &rules)
        .await
        .unwrap()
        .is_empty());
    let first = Commit {
        rule_states: vec![
            ("r1".to_string(), "{\"n\": 1}".to_string()),
            ("r2".to_string(), "x".repeat(200_000)),
        ],
        ..Commit::default()
    };
    store.commit(&account(), &first).await.unwrap();
    let second = Commit {
        rule_states: vec![("r1".to_string(), "{\"n\": 2}".to_string())],
        watermark: Some(at(100)),
        ..Commit::default()
    };
    store.commit(&account(), &second).await.unwrap();
    let got = store.rule_states(&account(), &rules).await.unwrap();
    assert_eq!(got.len(), 2, "a rule with no state is absent");
    assert_eq!(got["r1"], "{\"n\": 2}");
    assert_eq!(got["r2"].len(), 200_000, "a large state comes back whole");
    assert!(store
        .rule_states(&other_account(), &rules)
        .await
        .unwrap()
        .is_empty());
}
