//! Validated identifiers: once built they are known to be well formed, so store keys, file
//! names and SQL built from them cannot be fed garbage.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not an AWS account id (12 digits)")]
    Account(String),
    #[error("`{0}` is not an AWS region name (lowercase letters, digits and dashes)")]
    Region(String),
}

/// An AWS account id: always exactly 12 ASCII digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(text.to_string()))
        } else {
            Err(IdError::Account(text.chars().take(64).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An AWS region name such as `us-east-1`. Published datasets randomise region names
/// (`apiso-northsouth-3r`), so the check is on the alphabet, not on a list.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let ok = !text.is_empty()
            && text.len() <= 32
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Region(text.to_string()))
        } else {
            Err(IdError::Region(text.chars().take(64).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_id {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $t::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_id!(AccountId);
string_id!(Region);

/// What was called: the service endpoint and the API name, e.g. `iam.amazonaws.com` and
/// `CreateAccessKey`. Shown short as `iam:CreateAccessKey`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Action {
    pub source: String,
    pub name: String,
}

impl Action {
    pub fn new(source: &str, name: &str) -> Self {
        Action {
            source: source.to_string(),
            name: name.to_string(),
        }
    }

    /// The service prefix as IAM writes it: `iam` for `iam.amazonaws.com`.
    pub fn service(&self) -> &str {
        self.source
            .strip_suffix(".amazonaws.com")
            .unwrap_or(&self.source)
    }

    /// The `service:Name` form people write in policies and config files.
    pub fn short(&self) -> String {
        format!("{}:{}", self.service(), self.name)
    }

    /// Parses either `iam:CreateAccessKey` or `iam.amazonaws.com:CreateAccessKey`.
    pub fn parse_short(text: &str) -> Option<Self> {
        let (service, name) = text.rsplit_once(':')?;
        if service.is_empty() || name.is_empty() {
            return None;
        }
        let source = if service.contains('.') {
            service.to_string()
        } else {
            format!("{service}.amazonaws.com")
        };
        Some(Action {
            source,
            name: name.to_string(),
        })
    }

    /// The stored key form: `source:name`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.source, self.name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service(), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("123456789012").is_ok());
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "' OR 1=1 --",
            "",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions_reject_sql_and_paths() {
        assert!(Region::parse("us-east-1").is_ok());
        assert!(Region::parse("apiso-northsouth-3r").is_ok());
        for bad in ["us-east-1'", "../etc", "US-EAST-1", "", "1abc"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_read_both_forms() {
        let a = Action::parse_short("iam:CreateAccessKey").unwrap();
        assert_eq!(a.source, "iam.amazonaws.com");
        assert_eq!(a.to_string(), "iam:CreateAccessKey");
        assert_eq!(
            Action::parse_short("iam.amazonaws.com:CreateAccessKey"),
            Some(a)
        );
        assert!(Action::parse_short("CreateAccessKey").is_none());
    }
}
