//! The ACTIVE accounts of an AWS Organization, through the `[muster]` filters.
//!
//! Organizations is asked as few questions as the filters need: `ListAccounts` always;
//! organizational units only when an OU filter is set; tags only when a tag filter is set,
//! and only for the accounts still in the running.
//!
//! OU membership is found from the listed OUs *down* (`ListAccountsForParent` and
//! `ListOrganizationalUnitsForParent` over each listed OU's subtree), not from each account
//! *up* (`ListParents` until the root). Going up costs one call per account plus one per OU
//! on the way; going down costs about two calls per OU in the listed subtrees plus one per 20
//! accounts in them. Organizations hold far more accounts than OUs, and the API allows only a
//! few calls a second, so going down is the cheaper walk: 1,000 accounts in 50 OUs take about
//! 150 calls instead of over 1,000.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_organizations::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_organizations::types::{AccountState, AccountStatus};
use futures::{StreamExt, TryStreamExt};

use super::{AccountsError, Filters, MusterAccount, Roster};
use crate::cloudtrail::AccountId;

/// Tags of accounts are read this many at a time: Organizations throttles at a few calls a
/// second, and the SDK's retries absorb the rest.
const TAG_CALLS_AT_ONCE: usize = 4;

/// What to do for the error codes people meet first.
pub(super) fn hint(code: &str) -> &'static str {
    match code {
        "AccessDeniedException" => "; run from the management account or a delegated administrator, or set muster.assume_role_arn to a role there",
        "AWSOrganizationsNotInUseException" => "; these credentials' account is not in an organization (use accounts_from = \"static\" or \"folder\")",
        "ParentNotFoundException" => "; check muster.include_ous and muster.exclude_ous",
        _ => "",
    }
}

fn call_failed<E, R>(call: &'static str, target: &str, e: SdkError<E, R>) -> AccountsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // No code means the call never got a service answer (network, credentials, timeout).
    let code = e.code().unwrap_or("no service error code").to_string();
    AccountsError::Call {
        call,
        target: if target.is_empty() {
            String::new()
        } else {
            format!(" ({target})")
        },
        hint: hint(&code),
        code,
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// The ACTIVE accounts of an AWS Organization.
pub struct OrganizationsRoster {
    client: aws_sdk_organizations::Client,
    filters: Filters,
}

/// An Organizations client, through a role in the management account when one is given.
/// Organizations is a global service: the SDK routes its calls to its one endpoint from any
/// region.
pub async fn organizations_client(
    sdk: &SdkConfig,
    assume_role_arn: Option<&str>,
) -> aws_sdk_organizations::Client {
    let Some(arn) = assume_role_arn else {
        return crate::aws::organizations(sdk);
    };
    let role = aws_config::sts::AssumeRoleProvider::builder(arn)
        .session_name("trailhound-muster")
        .configure(sdk)
        .build()
        .await;
    let config = aws_sdk_organizations::config::Builder::from(sdk)
        .credentials_provider(role)
        .build();
    aws_sdk_organizations::Client::from_conf(config)
}

/// An account is active when its state (or, from older endpoints, its status) says so.
fn is_active(a: &aws_sdk_organizations::types::Account) -> bool {
    match a.state() {
        Some(state) => *state == AccountState::Active,
        None => a.status() == Some(&AccountStatus::Active),
    }
}

impl OrganizationsRoster {
    pub fn new(client: aws_sdk_organizations::Client, filters: Filters) -> Self {
        OrganizationsRoster { client, filters }
    }

    /// The direct children of `parent`: its accounts and its OUs.
    async fn children(&self, parent: &str) -> Result<(Vec<String>, Vec<String>), AccountsError> {
        let accounts: Vec<String> = self
            .client
            .list_accounts_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| call_failed("ListAccountsForParent", parent, e))?
            .into_iter()
            .flat_map(|page| page.accounts.unwrap_or_default())
            .filter_map(|a| a.id)
            .collect();
        let ous: Vec<String> = self
            .client
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| call_failed("ListOrganizationalUnitsForParent", parent, e))?
            .into_iter()
            .flat_map(|page| page.organizational_units.unwrap_or_default())
            .filter_map(|ou| ou.id)
            .collect();
        Ok((accounts, ous))
    }

    /// For each listed OU, the accounts anywhere below it. Each OU's children are asked for
    /// once, however many listed OUs it is under.
    async fn accounts_under(
        &self,
        listed: &BTreeSet<&str>,
    ) -> Result<HashMap<String, BTreeSet<String>>, AccountsError> {
        let mut children: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
        let mut under = HashMap::new();
        for ou in listed {
            let mut found = BTreeSet::new();
            let mut stack = vec![ou.to_string()];
            while let Some(parent) = stack.pop() {
                if !children.contains_key(&parent) {
                    let c = self.children(&parent).await?;
                    children.insert(parent.clone(), c);
                }
                if let Some((accounts, ous)) = children.get(&parent) {
                    found.extend(accounts.iter().cloned());
                    stack.extend(ous.iter().cloned());
                }
            }
            under.insert(ou.to_string(), found);
        }
        Ok(under)
    }

    async fn tags_of(&self, id: &AccountId) -> Result<BTreeMap<String, String>, AccountsError> {
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_id(id.as_str())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| call_failed("ListTagsForResource", id.as_str(), e))?;
        Ok(tags.into_iter().map(|t| (t.key, t.value)).collect())
    }

    async fn filter_by_ous(
        &self,
        accounts: Vec<MusterAccount>,
    ) -> Result<Vec<MusterAccount>, AccountsError> {
        let f = &self.filters;
        if f.include_ous.is_empty() && f.exclude_ous.is_empty() {
            return Ok(accounts);
        }
        let listed: BTreeSet<&str> = f
            .include_ous
            .iter()
            .chain(&f.exclude_ous)
            .map(String::as_str)
            .collect();
        let under = self.accounts_under(&listed).await?;
        let is_under =
            |ou: &String, id: &AccountId| under.get(ou).is_some_and(|s| s.contains(id.as_str()));
        let mut kept = Vec::new();
        for mut a in accounts {
            if f.exclude_ous.iter().any(|ou| is_under(ou, &a.id)) {
                continue;
            }
            a.ous = f
                .include_ous
                .iter()
                .filter(|ou| is_under(ou, &a.id))
                .cloned()
                .collect();
            if f.include_ous.is_empty() || !a.ous.is_empty() {
                kept.push(a);
            }
        }
        Ok(kept)
    }

    async fn filter_by_tags(
        &self,
        accounts: Vec<MusterAccount>,
    ) -> Result<Vec<MusterAccount>, AccountsError> {
        let f = &self.filters;
        if f.include_tags.is_empty() && f.exclude_tags.is_empty() {
            return Ok(accounts);
        }
        let keys: BTreeSet<&str> = f
            .include_tags
            .iter()
            .chain(&f.exclude_tags)
            .map(|(k, _)| k.as_str())
            .collect();
        let tagged: Vec<(MusterAccount, BTreeMap<String, String>)> =
            futures::stream::iter(accounts.into_iter().map(|a| async move {
                let tags = self.tags_of(&a.id).await?;
                Ok::<_, AccountsError>((a, tags))
            }))
            .buffered(TAG_CALLS_AT_ONCE)
            .try_collect()
            .await?;
        let has =
            |tags: &BTreeMap<String, String>, (k, v): &(String, String)| tags.get(k) == Some(v);
        Ok(tagged
            .into_iter()
            .filter(|(_, tags)| !f.exclude_tags.iter().any(|t| has(tags, t)))
            .filter(|(_, tags)| {
                f.include_tags.is_empty() || f.include_tags.iter().any(|t| has(tags, t))
            })
            .map(|(mut a, tags)| {
                a.tags = tags
                    .into_iter()
                    .filter(|(k, _)| keys.contains(k.as_str()))
                    .collect();
                a
            })
            .collect())
    }
}

#[async_trait]
impl Roster for OrganizationsRoster {
    async fn accounts(&self) -> Result<Vec<MusterAccount>, AccountsError> {
        // Organizations' paginators have no `items()` (its model names no item list), so the
        // pages are flattened here.
        let listed: Vec<aws_sdk_organizations::types::Account> = self
            .client
            .list_accounts()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| call_failed("ListAccounts", "", e))?
            .into_iter()
            .flat_map(|page| page.accounts.unwrap_or_default())
            .collect();
        let mut active = BTreeMap::new();
        for a in listed.iter().filter(|a| is_active(a)) {
            let text = a.id().unwrap_or_default();
            let id = AccountId::parse(text).map_err(|_| AccountsError::BadId {
                call: "ListAccounts",
                id: text.chars().take(64).collect(),
            })?;
            if self.filters.keeps_id(&id) {
                let mut account = MusterAccount::bare(id.clone());
                account.name = a.name().map(str::to_string);
                active.insert(id, account);
            }
        }
        let accounts = self.filter_by_ous(active.into_values().collect()).await?;
        self.filter_by_tags(accounts).await
    }
}
