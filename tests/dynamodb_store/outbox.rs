//! The outbox on DynamoDB: staging is idempotent per finding id (also across processes),
//! pending is per sink and in staging order, a delivery is marked once.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use trailhound::alert::{Finding, FindingKind, Level, PrincipalRef, Severity};
use trailhound::baseline::dynamodb::DynamoStore;
use trailhound::baseline::{BaselineStore, Commit, PairKey, PairWrite, PrincipalState, StoreError};
use trailhound::cloudtrail::IdentityType;

use super::{account, at, fresh, raw_item, state};

pub fn finding(id: &str) -> Finding {
    Finding {
        id: id.to_string(),
        kind: FindingKind::NewAction,
        title: format!("finding {id}"),
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

fn sinks(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

#[tokio::test]
async fn staging_the_same_finding_twice_keeps_one_and_its_delivery_state() {
    let (store, _) = fresh("stage-twice").await;
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
    // Staged again with a sink it was never staged for: owed to that one only.
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

#[tokio::test]
async fn pending_is_per_sink() {
    let (store, _) = fresh("per-sink").await;
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

#[tokio::test]
async fn pending_is_oldest_first_and_limited() {
    let (store, _) = fresh("oldest-first").await;
    let hec = sinks(&["hec"]);
    store
        .stage_at(&[finding("b")], &hec, at(200))
        .await
        .unwrap();
    store
        .stage_at(&[finding("c")], &hec, at(100))
        .await
        .unwrap();
    store
        .stage_at(&[finding("a")], &hec, at(200))
        .await
        .unwrap();

    assert_eq!(
        ids(&store.pending("hec", 10).await.unwrap()),
        ["c", "a", "b"]
    );
    assert_eq!(ids(&store.pending("hec", 2).await.unwrap()), ["c", "a"]);
    assert!(store.pending("hec", 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn delivery_keeps_its_first_time() {
    let (store, client) = fresh("first-delivery").await;
    store
        .stage(&[finding("f1")], &sinks(&["hec"]))
        .await
        .unwrap();
    let f1 = ["f1".to_string()];
    store.mark_delivered_at("hec", &f1, at(10)).await.unwrap();
    store.mark_delivered_at("hec", &f1, at(20)).await.unwrap();
    let delivery = raw_item(&client, store.table(), "F#f1", "S#hec")
        .await
        .expect("the delivery item");
    assert_eq!(delivery["delivered_at"], AttributeValue::N("10".into()));
}

#[tokio::test]
async fn unreadable_finding_is_corrupt_naming_its_id() {
    let (store, client) = fresh("corrupt").await;
    store
        .stage(&[finding("f1")], &sinks(&["hec"]))
        .await
        .unwrap();
    client
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("F#f1".into()))
        .key("sk", AttributeValue::S("F".into()))
        .update_expression("SET #j = :j")
        .expression_attribute_names("#j", "json")
        .expression_attribute_values(":j", AttributeValue::S("{\"id\": 1".into()))
        .send()
        .await
        .unwrap();
    match store.pending("hec", 10).await {
        Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, "f1"),
        other => panic!("expected a corrupt finding, got {other:?}"),
    }
}

#[tokio::test]
async fn two_stores_staging_at_once_keep_each_finding_once() {
    let (first, client) = fresh("concurrent").await;
    // A second process: its own client and store on the same table.
    let second = DynamoStore::new(client.clone(), first.table());
    let hec = sinks(&["hec"]);
    // Overlapping batches: ids 0..150 and 50..200, in batches of 10.
    let worker = |store: DynamoStore, from: usize| {
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

#[tokio::test]
async fn values_that_look_like_injection_are_stored_verbatim() {
    let (store, _) = fresh("injection").await;
    // DynamoDB expression syntax, our key separators and escapes, and SQL for good measure.
    let evil = "x#P#a :v #pk = :pk OR attribute_not_exists(pk) %23 '); DROP TABLE t; --";
    let k = PairKey {
        principal: evil.to_string(),
        action: "#sk = :sk; REMOVE #pk".to_string(),
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
        action: format!(
            "P#a :v #pk = :pk OR attribute_not_exists(pk) %23 '); DROP TABLE t; --#{}",
            k.action
        ),
        outcome: k.outcome.clone(),
    };
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
