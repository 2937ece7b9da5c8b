//! The DynamoDB store against the local AWS emulator (moto, started by scripts/test.sh): the
//! behaviours the SQLite store's tests prove, on a real table per test, and a whole hunt on
//! DynamoDB with its steady-state cost.
//!
//! Without the emulator these tests fail and say how to start it; they never skip.

mod common;
#[path = "dynamodb_store/hunt.rs"]
mod hunt;
#[path = "dynamodb_store/outbox.rs"]
mod outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::{
    BaselineStore, Commit, PairKey, PairState, PairWrite, PrincipalState, StoreError,
};
use trailhound::cloudtrail::{AccountId, IdentityType, Timestamp};
use trailhound::window::Cursor;

/// A DynamoDB client on the emulator. Refuses to run when the SDK would reach anything else,
/// so a test can never create tables in a real account.
pub async fn client() -> Client {
    let endpoint = std::env::var("TRAILHOUND_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "TRAILHOUND_AWS_ENDPOINT is not set: the DynamoDB store tests run against the local \
             AWS emulator. Run scripts/test.sh, or start it with \
             `read -r e p < <(bash scripts/emulator.sh)` and export TRAILHOUND_AWS_ENDPOINT=$e \
             AWS_ENDPOINT_URL=$e AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
             AWS_REGION=us-east-1"
        )
    });
    let conf = trailhound::aws::load().await;
    assert_eq!(
        conf.endpoint_url(),
        Some(endpoint.as_str()),
        "AWS_ENDPOINT_URL must be the emulator's address ({endpoint}), as scripts/test.sh sets it"
    );
    trailhound::aws::dynamodb(&conf)
}

/// A store on a new table of its own.
pub async fn fresh(test: &str) -> (DynamoStore, Client) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let client = client().await;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let table = format!("th-{test}-{}-{n}", std::process::id());
    DynamoStore::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("creating table {table}: {e}"));
    (DynamoStore::new(client.clone(), &table), client)
}

/// One raw item, for checking what the store wrote where its design says.
pub async fn raw_item(
    client: &Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.to_string()))
        .key("sk", AttributeValue::S(sk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("raw GetItem")
        .item
}

pub fn account() -> AccountId {
    AccountId::parse("111122223333").expect("a valid account id")
}

fn other_account() -> AccountId {
    AccountId::parse("444455556666").expect("a valid account id")
}

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix(seconds)
}

fn key(principal: &str, action: &str) -> PairKey {
    PairKey {
        principal: principal.to_string(),
        action: action.to_string(),
        outcome: "success".to_string(),
    }
}

fn state(first_seen: i64, last_seen: i64, count: u64, expires: i64) -> PairState {
    PairState {
        first_seen: at(first_seen),
        last_seen: at(last_seen),
        count,
        expires: at(expires),
    }
}

fn pairs(writes: &[(PairKey, PairState)]) -> Commit {
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

fn watermark(seconds: i64) -> Commit {
    Commit {
        watermark: Some(at(seconds)),
        ..Commit::default()
    }
}

#[tokio::test]
async fn expired_pair_is_unknown_on_read_while_still_stored() {
    let (store, client) = fresh("expired").await;
    let k = key("alice", "iam.amazonaws.com:CreateUser");
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
    // The item is still there, with the TTL attribute DynamoDB would delete it by.
    let stored = raw_item(
        &client,
        store.table(),
        "A#111122223333",
        "P#alice#iam.amazonaws.com:CreateUser#success",
    )
    .await
    .expect("the expired pair is still stored");
    assert_eq!(stored["expires_at"], AttributeValue::N("100".into()));
}

#[tokio::test]
async fn pairs_keep_their_earliest_first_seen() {
    let (store, _) = fresh("pair-first-seen").await;
    let k = key("alice", "kms.amazonaws.com:Decrypt");
    let read = |store: &DynamoStore| {
        let store = store.clone();
        let k = k.clone();
        async move {
            store
                .known_pairs(&account(), std::slice::from_ref(&k), at(0))
                .await
                .unwrap()[&k]
        }
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
    assert_eq!(read(&store).await, state(50, 90, 9, 2000));
    // A redone older window may know of an even earlier sighting.
    store
        .commit(&account(), &pairs(&[(k.clone(), state(20, 30, 2, 3000))]))
        .await
        .unwrap();
    assert_eq!(read(&store).await, state(20, 30, 2, 3000));
}

#[tokio::test]
async fn principals_keep_their_earliest_first_seen_and_give_the_account_history() {
    let (store, _) = fresh("principals").await;
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

#[tokio::test]
async fn watermark_never_moves_backwards() {
    let (store, _) = fresh("watermark").await;
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

#[tokio::test]
async fn pending_window_is_cleared_by_commit() {
    let (store, _) = fresh("pending-window").await;
    store.commit(&account(), &watermark(100)).await.unwrap();
    store.begin_window(&account(), at(300)).await.unwrap();
    assert_eq!(
        store.cursor(&account()).await.unwrap(),
        Cursor {
            watermark: Some(at(100)),
            pending_end: Some(at(300)),
        }
    );
    // A day-split piece of the window ends before it: the window is still unfinished.
    store.commit(&account(), &watermark(200)).await.unwrap();
    assert_eq!(
        store.cursor(&account()).await.unwrap(),
        Cursor {
            watermark: Some(at(200)),
            pending_end: Some(at(300)),
        }
    );
    store.commit(&account(), &watermark(300)).await.unwrap();
    assert_eq!(
        store.cursor(&account()).await.unwrap(),
        Cursor {
            watermark: Some(at(300)),
            pending_end: None,
        }
    );
    // A redone window behind the watermark is finished by any commit that reaches it.
    store.begin_window(&account(), at(250)).await.unwrap();
    store.commit(&account(), &watermark(250)).await.unwrap();
    assert_eq!(
        store.cursor(&account()).await.unwrap(),
        Cursor {
            watermark: Some(at(300)),
            pending_end: None,
        }
    );
}

#[tokio::test]
async fn a_first_window_can_be_pending_before_any_watermark() {
    let (store, _) = fresh("first-window").await;
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

#[tokio::test]
async fn accounts_and_outcomes_are_remembered_apart() {
    let (store, _) = fresh("apart").await;
    let success = key("alice", "iam.amazonaws.com:DeleteRole");
    let denied = PairKey {
        outcome: "denied".to_string(),
        ..success.clone()
    };
    store
        .commit(
            &account(),
            &pairs(&[(denied.clone(), state(1, 1, 1, 1000))]),
        )
        .await
        .unwrap();
    let both = [success.clone(), denied.clone()];
    let known = store.known_pairs(&account(), &both, at(5)).await.unwrap();
    assert!(known.contains_key(&denied) && !known.contains_key(&success));
    let elsewhere = store
        .known_pairs(&other_account(), &both, at(5))
        .await
        .unwrap();
    assert!(elsewhere.is_empty());
}

#[tokio::test]
async fn hundreds_of_keys_are_read_in_batches_of_one_hundred() {
    let (store, _) = fresh("batches").await;
    let stored: Vec<_> = (0..300)
        .map(|i| {
            (
                key(&format!("p{i}"), "s3.amazonaws.com:GetObject"),
                state(1, 2, 3, 1000),
            )
        })
        .collect();
    store.commit(&account(), &pairs(&stored)).await.unwrap();

    let asked: Vec<_> = (0..600)
        .map(|i| key(&format!("p{i}"), "s3.amazonaws.com:GetObject"))
        .collect();
    let before = store.counters();
    let known = store
        .known_pairs(&account(), &asked, at(500))
        .await
        .unwrap();
    let calls = store.counters().calls - before.calls;
    assert_eq!(known.len(), 300);
    assert!(known.contains_key(&key("p299", "s3.amazonaws.com:GetObject")));
    assert!(!known.contains_key(&key("p300", "s3.amazonaws.com:GetObject")));
    assert_eq!(calls, 6, "600 keys are six BatchGetItem calls");
    // Writing them took one read per 100 (earliest first-seen) and one write per 25.
    assert!(store.counters().write_units > 0.0);
}

#[tokio::test]
async fn a_principal_longer_than_a_dynamodb_key_round_trips() {
    let (store, _) = fresh("long-key").await;
    let long = format!(
        "arn:aws:iam::111122223333:role/{}/Deployer",
        "path".repeat(400)
    );
    let k = key(&long, "s3.amazonaws.com:PutObject");
    let commit = Commit {
        principals: vec![(
            long.clone(),
            PrincipalState {
                first_seen: at(7),
                kind: IdentityType::AssumedRole,
            },
        )],
        ..pairs(&[(k.clone(), state(7, 8, 1, 1000))])
    };
    store.commit(&account(), &commit).await.unwrap();
    let known = store
        .known_pairs(&account(), std::slice::from_ref(&k), at(10))
        .await
        .unwrap();
    assert_eq!(known[&k], state(7, 8, 1, 1000));
    let principals = store
        .known_principals(&account(), std::slice::from_ref(&long))
        .await
        .unwrap();
    assert_eq!(principals[&long].kind, IdentityType::AssumedRole);
}

#[tokio::test]
async fn create_table_is_idempotent_and_turns_ttl_on() {
    let (store, client) = fresh("create").await;
    DynamoStore::create_table(&client, store.table())
        .await
        .expect("creating an existing table again is fine");
    let ttl = client
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
}

#[tokio::test]
async fn a_table_with_other_keys_is_refused() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let client = client().await;
    let table = format!("th-foreign-{}", std::process::id());
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    match DynamoStore::create_table(&client, &table).await {
        Err(e @ StoreError::Open { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&table) && message.contains("keys"),
                "{message}"
            );
        }
        other => panic!("expected the foreign table to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn errors_name_the_operation_the_table_and_the_service_code() {
    let store = DynamoStore::new(client().await, "th-no-such-table");
    let message = store.cursor(&account()).await.unwrap_err().to_string();
    for part in [
        "111122223333",
        "GetItem",
        "th-no-such-table",
        "ResourceNotFoundException",
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    assert!(
        !message.contains("testing"),
        "no credentials in errors: {message}"
    );
}
