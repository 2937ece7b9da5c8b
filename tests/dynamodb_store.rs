//! The DynamoDB store against the local AWS emulator (moto, started by scripts/test.sh): the
//! store contract (`store_contract`, shared with the SQLite store) on a real table per test,
//! what is particular to DynamoDB (tables, keys, batching, errors), and a whole hunt on
//! DynamoDB with its steady-state cost.
//!
//! Without the emulator these tests fail and say how to start it; they never skip.

mod common;
#[path = "dynamodb_store/hunt.rs"]
mod hunt;
#[path = "athena_emulator/proxy.rs"]
mod proxy;
#[macro_use]
mod store_contract;
#[path = "dynamodb_store/outbox.rs"]
mod outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::{BaselineStore, Commit, PrincipalState, StoreError};
use trailhound::cloudtrail::IdentityType;
// The contract module reaches the crate as `th`.
use trailhound as th;

use outbox::Table;
use store_contract as contract;
use store_contract::{account, at, key, many_key, many_pairs, pairs, state};

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

/// A store on `table` whose calls go through `proxy`, to be counted or held back there.
async fn through(proxy: &proxy::Proxy, table: &str) -> DynamoStore {
    let conf = trailhound::aws::load().await;
    // On the client's own config: the SDK prefers AWS_ENDPOINT_URL to the shared config's
    // endpoint.
    let conf = aws_sdk_dynamodb::config::Builder::from(&conf)
        .endpoint_url(proxy.url())
        .build();
    DynamoStore::new(Client::from_conf(conf), table)
}

/// A fresh table and raw access to it, for the contract.
async fn subject(test: &str) -> Table {
    let (store, client) = fresh(test).await;
    Table { store, client }
}

baseline_contract_tests!(subject);

#[tokio::test]
async fn expired_pair_is_unknown_on_read_while_still_stored() {
    let (store, client) = fresh("expired").await;
    contract::expired_pair_is_unknown_on_read(&store).await;
    // The item is still there, with the TTL attribute DynamoDB would delete it by.
    assert_eq!(
        contract::expiring_key(),
        key("alice", "iam.amazonaws.com:CreateUser")
    );
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
async fn a_whole_windows_keys_are_answered_in_one_call() {
    let (store, _) = fresh("one-call").await;
    contract::a_whole_windows_keys_are_answered_in_one_call(&store, 300).await;
}

#[tokio::test]
async fn hundreds_of_keys_are_read_in_batches_of_one_hundred() {
    let (store, _) = fresh("batches").await;
    store
        .commit(&account(), &pairs(&many_pairs(300)))
        .await
        .unwrap();

    let asked: Vec<_> = (0..600).map(many_key).collect();
    let before = store.counters();
    let known = store
        .known_pairs(&account(), &asked, at(500))
        .await
        .unwrap();
    let calls = store.counters().calls - before.calls;
    assert_eq!(known.len(), 300);
    assert!(known.contains_key(&many_key(299)));
    assert!(!known.contains_key(&many_key(300)));
    assert_eq!(calls, 6, "600 keys are six BatchGetItem calls");
    assert!(store.counters().write_units > 0.0);
}

/// A commit writes its pairs in batches under the account's commit lease: a read of the
/// stored first-seen per 100 pairs, a write per 25, and for the lease two updates and a read,
/// whatever the number of pairs. The earliest first-seen stands across processes.
#[tokio::test]
async fn pair_writes_are_batched_under_the_lease_and_keep_the_earliest_first_seen() {
    let (first, client) = fresh("pair-writes").await;
    let proxy = proxy::Proxy::start(&std::env::var("TRAILHOUND_AWS_ENDPOINT").unwrap()).await;
    let counted = through(&proxy, first.table()).await;
    let keys: Vec<_> = (0..60).map(many_key).collect();
    let writes = |first_seen: i64, last_seen: i64, expires: i64| {
        let list: Vec<_> = keys
            .iter()
            .map(|k| (k.clone(), state(first_seen, last_seen, 1, expires)))
            .collect();
        pairs(&list)
    };
    // New pairs, then their TTL refresh.
    counted
        .commit(&account(), &writes(100, 110, 1000))
        .await
        .unwrap();
    counted
        .commit(&account(), &writes(100, 300, 2000))
        .await
        .unwrap();
    assert_eq!(
        proxy.seen("BatchWriteItem"),
        6,
        "60 pairs are 3 batches, twice"
    );
    assert_eq!(
        proxy.seen("BatchGetItem"),
        2,
        "one consistent read per commit"
    );
    assert_eq!(
        proxy.seen("UpdateItem"),
        4,
        "the lease taken and given back, twice"
    );
    assert_eq!(proxy.seen("GetItem"), 2, "the lease read back, twice");
    assert_eq!(proxy.seen("PutItem"), 0);
    let known = first.known_pairs(&account(), &keys, at(500)).await.unwrap();
    assert!(keys.iter().all(|k| known[k] == state(100, 300, 1, 2000)));

    // Two processes commit the same pairs, one from an older window that saw them earlier:
    // the earliest first-seen stands whichever write lands last.
    let second = DynamoStore::new(client.clone(), first.table());
    let acct = account();
    second.commit(&acct, &writes(40, 60, 3000)).await.unwrap();
    first.commit(&acct, &writes(100, 400, 3000)).await.unwrap();
    let known = first.known_pairs(&account(), &keys, at(500)).await.unwrap();
    for k in &keys {
        assert_eq!(known[k], state(40, 400, 1, 3000), "{k:?}");
    }
    // The lease is given back: nothing of it stays on the cursor.
    let cursor = raw_item(&client, first.table(), "A#111122223333", "C")
        .await
        .expect("the cursor item");
    assert!(!cursor.contains_key("commit_owner") && !cursor.contains_key("commit_until"));
}

/// Sets the commit lease of the test account's partition as another process would hold it.
async fn hold_lease(client: &Client, table: &str, until: i64) {
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("A#111122223333".into()))
        .key("sk", AttributeValue::S("C".into()))
        .update_expression("SET commit_owner = :o, commit_until = :u")
        .expression_attribute_values(":o", AttributeValue::S("another-process".into()))
        .expression_attribute_values(":u", AttributeValue::N(until.to_string()))
        .send()
        .await
        .expect("raw UpdateItem");
}

/// Gives the test account's lease back as the process holding it would.
async fn free_lease(client: &Client, table: &str) {
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("A#111122223333".into()))
        .key("sk", AttributeValue::S("C".into()))
        .update_expression("REMOVE commit_owner, commit_until")
        .send()
        .await
        .expect("raw UpdateItem");
}

/// A commit waits while another process holds the account's lease, and goes on once it is
/// given back; nothing of it is written before.
#[tokio::test]
async fn a_commit_waits_for_another_processes_commit_of_the_account() {
    let (store, client) = fresh("lease-wait").await;
    let far = th::cloudtrail::Timestamp::now().unix() + 3600;
    hold_lease(&client, store.table(), far).await;
    let k = key("alice", "iam.amazonaws.com:CreateUser");
    let commit = pairs(&[(k.clone(), state(10, 20, 1, far))]);
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.commit(&account(), &commit).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        !waiting.is_finished(),
        "the commit went ahead under another's lease"
    );
    assert!(store
        .known_pairs(&account(), std::slice::from_ref(&k), at(30))
        .await
        .unwrap()
        .is_empty());
    free_lease(&client, store.table()).await;
    waiting.await.unwrap().unwrap();
    let known = store
        .known_pairs(&account(), std::slice::from_ref(&k), at(30))
        .await
        .unwrap();
    assert_eq!(known[&k], state(10, 20, 1, far));
}

/// A commit that finds its lease taken over when it gives it back (it stalled past its lease
/// and another process committed meanwhile) writes its baseline again under a new lease, so
/// the other's earlier first-seen and its own later state both stand.
#[tokio::test]
async fn a_commit_whose_lease_was_taken_over_writes_again_under_a_new_one() {
    let (plain, client) = fresh("lease-taken").await;
    let proxy = proxy::Proxy::start(&std::env::var("TRAILHOUND_AWS_ENDPOINT").unwrap()).await;
    let counted = through(&proxy, plain.table()).await;
    let far = th::cloudtrail::Timestamp::now().unix() + 3600;
    let k = key("alice", "iam.amazonaws.com:CreateUser");
    // The first batch is applied at once, its answer held back: the commit stalls there.
    proxy.script(
        "BatchWriteItem",
        [proxy::Reply::Slow(std::time::Duration::from_secs(2))],
    );
    let committing = {
        let commit = pairs(&[(k.clone(), state(100, 110, 1, far))]);
        tokio::spawn(async move { counted.commit(&account(), &commit).await })
    };
    while proxy.seen("BatchWriteItem") == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Meanwhile another process takes the lease and writes the pair as seen earlier.
    hold_lease(&client, plain.table(), far).await;
    let n = |v: i64| AttributeValue::N(v.to_string());
    let text = |v: &str| AttributeValue::S(v.to_string());
    client
        .put_item()
        .table_name(plain.table())
        .item("pk", text("A#111122223333"))
        .item("sk", text("P#alice#iam.amazonaws.com:CreateUser#success"))
        .item("principal", text("alice"))
        .item("action", text("iam.amazonaws.com:CreateUser"))
        .item("outcome", text("success"))
        .item("first_seen", n(50))
        .item("last_seen", n(60))
        .item("count", n(1))
        .item("days", n(1))
        .item("expires_at", n(far))
        .send()
        .await
        .expect("raw PutItem");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(
        !committing.is_finished(),
        "the commit ended while another process held its partition's lease"
    );
    free_lease(&client, plain.table()).await;
    committing.await.unwrap().unwrap();
    assert_eq!(
        proxy.seen("BatchWriteItem"),
        2,
        "written again under a new lease"
    );
    let known = plain
        .known_pairs(&account(), std::slice::from_ref(&k), at(30))
        .await
        .unwrap();
    assert_eq!(known[&k], state(50, 110, 1, far));
}

/// A process that died holding the lease holds it only until it runs out.
#[tokio::test]
async fn a_lease_left_by_a_dead_process_is_waited_out() {
    let (store, client) = fresh("lease-dead").await;
    let now = th::cloudtrail::Timestamp::now().unix();
    hold_lease(&client, store.table(), now + 2).await;
    let k = key("alice", "iam.amazonaws.com:CreateUser");
    let started = std::time::Instant::now();
    store
        .commit(
            &account(),
            &pairs(&[(k.clone(), state(10, 20, 1, now + 3600))]),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the lease was taken before it ran out"
    );
    let known = store
        .known_pairs(&account(), std::slice::from_ref(&k), at(30))
        .await
        .unwrap();
    assert_eq!(known.len(), 1);
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
