//! Accounts from AWS Organizations, against the local emulator: ACTIVE accounts only, every
//! page, the id, OU and tag filters, and `trailhound muster`'s JSON.
//!
//! Each test builds its own organization in its own emulated management account, reached
//! through an assumed role as in production (`muster.assume_role_arn`), so tests never share
//! an organization.

mod moto;

use std::collections::BTreeMap;

use aws_sdk_organizations::types::{OrganizationFeatureSet, Tag};
use aws_sdk_organizations::Client;
use trailhound::config::MusterConfig;
use trailhound::muster::accounts::{
    organizations_client, Filters, MusterAccount, OrganizationsRoster, Roster,
};

/// An organization in the emulator: its management account, OUs and member accounts.
struct Org {
    role_arn: String,
    client: Client,
    management: String,
    root: String,
    ous: BTreeMap<&'static str, String>,
    /// Member account ids by name.
    accounts: BTreeMap<String, String>,
}

impl Org {
    /// A new organization in a fresh management account, with OUs `prod` (holding `prod-eu`)
    /// and `dev` under the root.
    async fn new() -> Org {
        let management = format!("9{}", moto::unique(11));
        let role_arn = format!("arn:aws:iam::{management}:role/trailhound-muster");
        let client = organizations_client(&moto::sdk().await, Some(&role_arn)).await;
        client
            .create_organization()
            .feature_set(OrganizationFeatureSet::All)
            .send()
            .await
            .expect("CreateOrganization in the emulator");
        let root = client.list_roots().send().await.unwrap().roots()[0]
            .id()
            .unwrap()
            .to_string();
        let mut org = Org {
            role_arn,
            client,
            management,
            root,
            ous: BTreeMap::new(),
            accounts: BTreeMap::new(),
        };
        let root = org.root.clone();
        let prod = org.ou("prod", &root).await;
        org.ou("prod-eu", &prod).await;
        org.ou("dev", &root).await;
        org
    }

    async fn ou(&mut self, name: &'static str, parent: &str) -> String {
        let out = self
            .client
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await
            .unwrap();
        let id = out.organizational_unit().unwrap().id().unwrap().to_string();
        self.ous.insert(name, id.clone());
        id
    }

    /// Creates an account with `tags`, in OU `ou` (or the root).
    async fn account(&mut self, name: &str, ou: Option<&str>, tags: &[(&str, &str)]) -> String {
        let mut create = self
            .client
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"));
        for (k, v) in tags {
            create = create.tags(Tag::builder().key(*k).value(*v).build().unwrap());
        }
        let status = create.send().await.unwrap();
        let id = status
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("the emulator creates accounts at once")
            .to_string();
        if let Some(ou) = ou {
            self.client
                .move_account()
                .account_id(&id)
                .source_parent_id(&self.root)
                .destination_parent_id(&self.ous[ou])
                .send()
                .await
                .unwrap();
        }
        self.accounts.insert(name.to_string(), id.clone());
        id
    }

    async fn close(&self, name: &str) {
        self.client
            .close_account()
            .account_id(&self.accounts[name])
            .send()
            .await
            .unwrap();
    }

    fn roster(&self, muster: &MusterConfig) -> OrganizationsRoster {
        OrganizationsRoster::new(
            self.client.clone(),
            Filters::from_config(muster).expect("valid filters"),
        )
    }

    fn ids_of(&self, names: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = names
            .iter()
            .map(|n| {
                if *n == "management" {
                    self.management.clone()
                } else {
                    self.accounts[*n].clone()
                }
            })
            .collect();
        ids.sort();
        ids
    }
}

fn ids(accounts: &[MusterAccount]) -> Vec<String> {
    accounts.iter().map(|a| a.id.to_string()).collect()
}

#[tokio::test]
async fn only_active_accounts_are_mustered() {
    let mut org = Org::new().await;
    org.account("alpha", None, &[]).await;
    org.account("beta", Some("dev"), &[]).await;
    org.account("gone", None, &[]).await;
    org.close("gone").await;

    let got = org
        .roster(&MusterConfig::default())
        .accounts()
        .await
        .unwrap();
    assert_eq!(ids(&got), org.ids_of(&["management", "alpha", "beta"]));
    let alpha = got
        .iter()
        .find(|a| a.id.as_str() == org.accounts["alpha"])
        .unwrap();
    assert_eq!(alpha.name.as_deref(), Some("alpha"));
}

#[tokio::test]
async fn every_page_of_list_accounts_is_read() {
    let mut org = Org::new().await;
    // The emulator pages ListAccounts at 100 (AWS at 20): 105 members and the management
    // account take two pages either way.
    for n in 0..105 {
        org.account(&format!("member-{n:03}"), None, &[]).await;
    }
    let first = org.client.list_accounts().send().await.unwrap();
    assert!(
        first.accounts().len() < 106 && first.next_token().is_some(),
        "the organization must span more than one page"
    );
    let got = org
        .roster(&MusterConfig::default())
        .accounts()
        .await
        .unwrap();
    assert_eq!(got.len(), 106);
    let mut names: Vec<&str> = org.accounts.keys().map(String::as_str).collect();
    names.push("management");
    assert_eq!(ids(&got), org.ids_of(&names));
}

#[tokio::test]
async fn accounts_are_filtered_by_id_ou_and_tag() {
    let mut org = Org::new().await;
    org.account("web", Some("prod"), &[("team", "blue")]).await;
    org.account("web-eu", Some("prod-eu"), &[("team", "blue")])
        .await;
    org.account("db", Some("prod"), &[("team", "red")]).await;
    org.account("db-eu", Some("prod-eu"), &[("team", "red"), ("hunt", "no")])
        .await;
    org.account("sandbox", Some("dev"), &[("team", "blue")])
        .await;
    org.account("loose", None, &[]).await;

    // An OU includes the accounts of the OUs below it.
    let prod = MusterConfig {
        include_ous: vec![org.ous["prod"].clone()],
        ..MusterConfig::default()
    };
    let got = org.roster(&prod).accounts().await.unwrap();
    assert_eq!(ids(&got), org.ids_of(&["web", "web-eu", "db", "db-eu"]));
    assert!(got.iter().all(|a| a.ous == vec![org.ous["prod"].clone()]));

    // Excluding a nested OU, an account and a tag; including by tag.
    let narrowed = MusterConfig {
        include_ous: vec![org.ous["prod"].clone(), org.ous["dev"].clone()],
        exclude_ous: vec![org.ous["prod-eu"].clone()],
        exclude_accounts: vec![org.accounts["sandbox"].clone()],
        include_tags: vec!["team=blue".into(), "team=red".into()],
        exclude_tags: vec!["hunt=no".into()],
        ..MusterConfig::default()
    };
    let got = org.roster(&narrowed).accounts().await.unwrap();
    assert_eq!(ids(&got), org.ids_of(&["web", "db"]));
    let web = got
        .iter()
        .find(|a| a.id.as_str() == org.accounts["web"])
        .unwrap();
    assert_eq!(web.tags.get("team").map(String::as_str), Some("blue"));

    // An allow-list of ids, with a tag filter that keeps only some of them.
    let listed = MusterConfig {
        accounts: org.ids_of(&["web", "db", "loose"]),
        include_tags: vec!["team=red".into()],
        ..MusterConfig::default()
    };
    let got = org.roster(&listed).accounts().await.unwrap();
    assert_eq!(ids(&got), org.ids_of(&["db"]));
}

#[tokio::test]
async fn an_unknown_ou_names_the_call_and_the_error_code() {
    let org = Org::new().await;
    let suffix = org.root.trim_start_matches("r-");
    let missing = MusterConfig {
        include_ous: vec![format!("ou-{suffix}-zzzzzzzz")],
        ..MusterConfig::default()
    };
    let err = org
        .roster(&missing)
        .accounts()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("organizations:ListAccountsForParent"), "{err}");
    assert!(err.contains("ParentNotFoundException"), "{err}");
}

fn muster_command(org: &Org, extra: &[&str], config: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trailhound.toml");
    std::fs::write(
        &path,
        format!(
            "[muster]\naccounts_from = \"organizations\"\nassume_role_arn = \"{}\"\n{config}",
            org.role_arn
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .current_dir(dir.path())
        .envs(moto::child_env())
        .args(["--config", "trailhound.toml", "muster"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "muster failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("muster prints one JSON array")
}

#[tokio::test]
async fn muster_command_prints_the_organization_as_json() {
    let mut org = Org::new().await;
    org.account("web", Some("prod"), &[("team", "blue")]).await;
    org.account("db", Some("dev"), &[("team", "red")]).await;
    org.account("gone", Some("prod"), &[]).await;
    org.close("gone").await;

    let all = muster_command(&org, &[], "");
    let items = all.as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    let web = items
        .iter()
        .find(|i| i["id"] == org.accounts["web"].as_str())
        .expect("web is listed");
    assert_eq!(web["name"], "web");
    assert!(
        web.get("ous").is_none() && web.get("tags").is_none(),
        "{web}"
    );

    let filtered = muster_command(
        &org,
        &[],
        &format!(
            "include_ous = [\"{}\"]\ninclude_tags = [\"team=blue\"]\n",
            org.ous["prod"]
        ),
    );
    let expected = serde_json::json!([{
        "id": org.accounts["web"],
        "name": "web",
        "ous": [org.ous["prod"]],
        "tags": {"team": "blue"},
    }]);
    assert_eq!(filtered, expected);

    let bare = muster_command(&org, &["--ids"], "");
    let mut want = org.ids_of(&["management", "web", "db"]);
    want.sort();
    assert_eq!(bare, serde_json::json!(want));
}
