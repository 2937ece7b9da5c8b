//! Where a run's accounts come from: the accounts a logs source holds (the embedded default),
//! a static list, or AWS Organizations (`organizations.rs`). All three go through the same
//! filters of `[muster]`.

mod organizations;

pub use organizations::{organizations_client, OrganizationsRoster};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::cloudtrail::AccountId;
use crate::config::{AccountSource, MusterConfig};
use crate::source::{ActivitySource, SourceError};

/// One account a run covers, and what the filters saw of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MusterAccount {
    pub id: AccountId,
    /// Its name in the organization (Organizations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The OUs of `muster.include_ous` it is under (directly or below).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ous: Vec<String>,
    /// Its tags whose keys the tag filters name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl MusterAccount {
    fn bare(id: AccountId) -> Self {
        MusterAccount {
            id,
            name: None,
            ous: Vec::new(),
            tags: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// An Organizations call failed; `code` is the service's error code.
    #[error("organizations:{call}{target} failed with {code}: {message}{hint}")]
    Call {
        call: &'static str,
        target: String,
        code: String,
        message: String,
        hint: &'static str,
    },
    #[error("{field} filters by organization data, which needs muster.accounts_from = \"organizations\"")]
    NeedsOrganizations { field: &'static str },
    #[error("muster.{field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("organizations:{call} returned `{id}`, which is not an account id")]
    BadId { call: &'static str, id: String },
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Where a run's accounts come from.
#[async_trait]
pub trait Roster: Send + Sync {
    /// The accounts to hunt after the filters, sorted by id, each once.
    async fn accounts(&self) -> Result<Vec<MusterAccount>, AccountsError>;
}

/// The `[muster]` filters, parsed once.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Empty: every account.
    allow: BTreeSet<AccountId>,
    deny: BTreeSet<AccountId>,
    include_ous: Vec<String>,
    exclude_ous: Vec<String>,
    include_tags: Vec<(String, String)>,
    exclude_tags: Vec<(String, String)>,
}

fn ids(field: &'static str, list: &[String]) -> Result<BTreeSet<AccountId>, AccountsError> {
    list.iter()
        .map(|a| {
            AccountId::parse(a).map_err(|e| AccountsError::Config {
                field,
                reason: e.to_string(),
            })
        })
        .collect()
}

fn tags(field: &'static str, list: &[String]) -> Result<Vec<(String, String)>, AccountsError> {
    list.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(AccountsError::Config {
                field,
                reason: format!("`{t}` must be written key=value"),
            }),
        })
        .collect()
}

impl Filters {
    pub fn from_config(muster: &MusterConfig) -> Result<Self, AccountsError> {
        Ok(Filters {
            allow: ids("accounts", &muster.accounts)?,
            deny: ids("exclude_accounts", &muster.exclude_accounts)?,
            include_ous: muster.include_ous.clone(),
            exclude_ous: muster.exclude_ous.clone(),
            include_tags: tags("include_tags", &muster.include_tags)?,
            exclude_tags: tags("exclude_tags", &muster.exclude_tags)?,
        })
    }

    /// The first filter that only Organizations can answer, if any is set.
    fn organization_field(&self) -> Option<&'static str> {
        [
            ("muster.include_ous", self.include_ous.is_empty()),
            ("muster.exclude_ous", self.exclude_ous.is_empty()),
            ("muster.include_tags", self.include_tags.is_empty()),
            ("muster.exclude_tags", self.exclude_tags.is_empty()),
        ]
        .into_iter()
        .find_map(|(field, empty)| (!empty).then_some(field))
    }

    fn keeps_id(&self, id: &AccountId) -> bool {
        (self.allow.is_empty() || self.allow.contains(id)) && !self.deny.contains(id)
    }
}

/// The accounts an activity source holds logs for: a logs folder's account folders, or the
/// CloudTrail bucket's.
pub struct FolderRoster {
    source: Arc<dyn ActivitySource>,
    filters: Filters,
}

impl FolderRoster {
    pub fn new(source: Arc<dyn ActivitySource>, filters: Filters) -> Result<Self, AccountsError> {
        if let Some(field) = filters.organization_field() {
            return Err(AccountsError::NeedsOrganizations { field });
        }
        Ok(FolderRoster { source, filters })
    }
}

#[async_trait]
impl Roster for FolderRoster {
    async fn accounts(&self) -> Result<Vec<MusterAccount>, AccountsError> {
        let found = self.source.accounts().await?;
        let kept: BTreeSet<AccountId> = found
            .into_iter()
            .filter(|a| self.filters.keeps_id(a))
            .collect();
        Ok(kept.into_iter().map(MusterAccount::bare).collect())
    }
}

/// Exactly the accounts of `muster.accounts`, less `muster.exclude_accounts`.
pub struct StaticRoster {
    filters: Filters,
}

impl StaticRoster {
    pub fn new(filters: Filters) -> Result<Self, AccountsError> {
        if let Some(field) = filters.organization_field() {
            return Err(AccountsError::NeedsOrganizations { field });
        }
        if filters.allow.is_empty() {
            return Err(AccountsError::Config {
                field: "accounts",
                reason: "lists no account, and accounts_from = \"static\" hunts only those".into(),
            });
        }
        Ok(StaticRoster { filters })
    }
}

#[async_trait]
impl Roster for StaticRoster {
    async fn accounts(&self) -> Result<Vec<MusterAccount>, AccountsError> {
        Ok(self
            .filters
            .allow
            .iter()
            .filter(|a| self.filters.keeps_id(a))
            .cloned()
            .map(MusterAccount::bare)
            .collect())
    }
}

/// The roster `[muster] accounts_from` names. `found` is the run's activity source, asked for
/// its accounts with `accounts_from = "folder"` (and not needed otherwise); the SDK config is
/// loaded only for Organizations.
pub async fn roster(
    muster: &MusterConfig,
    found: Option<Arc<dyn ActivitySource>>,
) -> Result<Box<dyn Roster>, AccountsError> {
    let filters = Filters::from_config(muster)?;
    Ok(match muster.accounts_from {
        AccountSource::Folder => {
            let source = found.ok_or(AccountsError::Config {
                field: "accounts_from",
                reason: "\"folder\" lists the accounts of the logs source, and none was opened"
                    .into(),
            })?;
            Box::new(FolderRoster::new(source, filters)?)
        }
        AccountSource::Static => Box::new(StaticRoster::new(filters)?),
        AccountSource::Organizations => {
            let sdk = crate::aws::load().await;
            let client = organizations_client(&sdk, muster.assume_role_arn.as_deref()).await;
            Box::new(OrganizationsRoster::new(client, filters))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn muster(f: impl FnOnce(&mut MusterConfig)) -> MusterConfig {
        let mut m = MusterConfig::default();
        f(&mut m);
        m
    }

    #[tokio::test]
    async fn static_list_less_the_excluded_accounts() {
        let m = muster(|m| {
            m.accounts = vec!["222222222222".into(), "111111111111".into()];
            m.exclude_accounts = vec!["222222222222".into()];
        });
        let roster = StaticRoster::new(Filters::from_config(&m).unwrap()).unwrap();
        let got = roster.accounts().await.unwrap();
        assert_eq!(
            got,
            vec![MusterAccount::bare(
                AccountId::parse("111111111111").unwrap()
            )]
        );
    }

    #[test]
    fn organization_filters_without_organizations_are_refused() {
        let m = muster(|m| {
            m.accounts = vec!["111111111111".into()];
            m.include_tags = vec!["env=prod".into()];
        });
        let err = StaticRoster::new(Filters::from_config(&m).unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("muster.include_tags"), "{err}");
    }

    #[test]
    fn error_names_call_target_and_code() {
        let e = AccountsError::Call {
            call: "ListAccountsForParent",
            target: " (ou-ab12-cd34ef56)".into(),
            code: "ParentNotFoundException".into(),
            message: "no such parent".into(),
            hint: organizations::hint("ParentNotFoundException"),
        };
        let text = e.to_string();
        assert!(text.starts_with("organizations:ListAccountsForParent (ou-ab12-cd34ef56) failed with ParentNotFoundException"), "{text}");
        assert!(text.contains("muster.include_ous"), "{text}");
    }
}
