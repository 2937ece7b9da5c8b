//! The sections of the config file that say where things live on AWS: which accounts to hunt
//! (`[muster]`), where activity comes from (`[source]`, `[athena]`, `[s3]`) and where state is
//! kept (`[store]`). Every name that ends up in an API call or a SQL statement is checked here,
//! so that nothing later has to trust text from the file.

use serde::Deserialize;

use crate::cloudtrail::{AccountId, Region, Span};

/// Which accounts a run covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountSource {
    /// The accounts found in the logs folder (the embedded default).
    #[default]
    Folder,
    /// AWS Organizations `ListAccounts` (ACTIVE accounts only).
    Organizations,
    /// Exactly the accounts of `muster.accounts`.
    Static,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MusterConfig {
    pub accounts_from: AccountSource,
    /// With `accounts_from = "static"`: the accounts. With any source: an allow-list if set.
    pub accounts: Vec<String>,
    /// Accounts never hunted.
    pub exclude_accounts: Vec<String>,
    /// Only accounts under these organizational units (`ou-...` or the root `r-...`), directly
    /// or below.
    pub include_ous: Vec<String>,
    pub exclude_ous: Vec<String>,
    /// Only accounts with one of these tags, written `key=value`.
    pub include_tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    /// A role in the management account to assume for Organizations calls.
    pub assume_role_arn: Option<String>,
    /// Accounts hunted at once. Each hunt has at most one Athena query active at a time, so
    /// this is the most queries trailhound keeps active. Athena's default quota of active DML
    /// queries (queued and running together, per account and region, shared by every
    /// workgroup) is 20 to 25 in most regions and higher in the largest; 20 fills the lowest
    /// of them. Starts beyond the quota are refused and waited out (`athena.throttle_patience`),
    /// so a lower quota, or others using it, slows a run down without failing it.
    pub concurrency: usize,
}

impl Default for MusterConfig {
    fn default() -> Self {
        MusterConfig {
            accounts_from: AccountSource::Folder,
            accounts: Vec::new(),
            exclude_accounts: Vec::new(),
            include_ous: Vec::new(),
            exclude_ous: Vec::new(),
            include_tags: Vec::new(),
            exclude_tags: Vec::new(),
            assume_role_arn: None,
            concurrency: 20,
        }
    }
}

/// Where activity rows come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A local folder of CloudTrail logs (`--logs`).
    #[default]
    Folder,
    /// Athena over the CloudTrail bucket.
    Athena,
    /// Reading the CloudTrail bucket's objects directly.
    S3,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    pub kind: SourceKind,
}

/// Where CloudTrail delivers: shared by the Athena and S3 sources.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrailConfig {
    /// The CloudTrail bucket.
    pub bucket: String,
    /// Key prefix before `AWSLogs/`, without slashes at the ends; empty for none.
    pub prefix: String,
    /// For an organization trail: the organization id (`o-...`), which CloudTrail puts after
    /// `AWSLogs/`.
    pub org_id: Option<String>,
    /// Regions the trail delivers for. Empty: the regions CloudTrail's folders show for the
    /// account (S3 source) or `ec2:DescribeRegions`-independent defaults are not guessed; set it.
    pub regions: Vec<String>,
}

/// How the Athena table's partitions are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionMode {
    /// Partition projection: no partition DDL ever; the table computes them.
    #[default]
    Projection,
    /// `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` for exactly what a window needs.
    Managed,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AthenaConfig {
    pub workgroup: String,
    pub database: String,
    pub table: String,
    /// `s3://bucket/prefix/` for query results; empty to use the workgroup's setting.
    pub output_location: String,
    pub partitions: PartitionMode,
    /// First day projection enumerates, `YYYY/MM/DD`.
    pub projection_start: String,
    /// How long one query may take, queued and running, before the account's hunt fails.
    pub query_timeout: Span,
    /// How long one Athena call may keep being throttled (`TooManyRequestsException`, also
    /// Athena's answer to a start beyond the quota of active queries) before the account's
    /// hunt fails, naming the account. Retries back off exponentially, with jitter, up to 20 s
    /// apart.
    pub throttle_patience: Span,
}

impl Default for AthenaConfig {
    fn default() -> Self {
        AthenaConfig {
            workgroup: "primary".into(),
            database: "trailhound".into(),
            table: "cloudtrail".into(),
            output_location: String::new(),
            partitions: PartitionMode::Projection,
            projection_start: "2020/01/01".into(),
            query_timeout: Span::minutes(10),
            // An hourly run of a large organization queues its hunts behind the quota for a
            // few minutes at most; throttled longer than this, something else holds the
            // quota, and the account is reported failed rather than waited on into the next
            // hour.
            throttle_patience: Span::minutes(10),
        }
    }
}

/// Where state lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The SQLite file of `--state`.
    #[default]
    Sqlite,
    /// A DynamoDB table.
    Dynamodb,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// The DynamoDB table (with `kind = "dynamodb"`).
    pub table: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Sqlite,
            table: "trailhound".into(),
        }
    }
}

fn is_name(text: &str, extra: &[char], max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// A bucket name as S3 allows it (lowercase, digits, dots, dashes; 3–63 characters).
pub fn is_bucket_name(text: &str) -> bool {
    (3..=63).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

/// A key prefix of S3's "safe" characters only, as the Athena statements write it into their
/// literals: no quotes, no `$`, no backslash, no `//`, no slash at either end.
pub fn is_sql_safe_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || (!prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains("//")
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!-_.*()/".contains(&b)))
}

/// Problems in the AWS sections, each naming its field.
pub fn problems(
    muster: &MusterConfig,
    source: &SourceConfig,
    trail: &TrailConfig,
    athena: &AthenaConfig,
    store: &StoreConfig,
) -> Vec<String> {
    let mut out = Vec::new();
    for (field, list) in [
        ("muster.accounts", &muster.accounts),
        ("muster.exclude_accounts", &muster.exclude_accounts),
    ] {
        for a in list {
            if AccountId::parse(a).is_err() {
                out.push(format!("{field}: `{a}` is not an account id (12 digits)"));
            }
        }
    }
    if muster.accounts_from == AccountSource::Static && muster.accounts.is_empty() {
        out.push(
            "muster.accounts must list accounts when muster.accounts_from = \"static\"".into(),
        );
    }
    for (field, list) in [
        ("muster.include_ous", &muster.include_ous),
        ("muster.exclude_ous", &muster.exclude_ous),
    ] {
        for ou in list {
            let ok = (ou.starts_with("ou-") || ou.starts_with("r-")) && is_name(ou, &['-'], 68);
            if !ok {
                out.push(format!("{field}: `{ou}` is not an organizational unit id like ou-ab12-cd34ef56 or r-ab12"));
            }
        }
    }
    for (field, list) in [
        ("muster.include_tags", &muster.include_tags),
        ("muster.exclude_tags", &muster.exclude_tags),
    ] {
        for tag in list {
            if tag.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                out.push(format!("{field}: `{tag}` must be written key=value"));
            }
        }
    }
    if let Some(arn) = &muster.assume_role_arn {
        if !(arn.starts_with("arn:aws") && arn.contains(":iam::") && arn.contains(":role/")) {
            out.push(format!(
                "muster.assume_role_arn: `{arn}` is not an IAM role ARN"
            ));
        }
    }
    if muster.concurrency == 0 || muster.concurrency > 100 {
        out.push(format!(
            "muster.concurrency is {}, must be within 1..=100",
            muster.concurrency
        ));
    }
    let needs_trail = matches!(source.kind, SourceKind::Athena | SourceKind::S3);
    if needs_trail && !is_bucket_name(&trail.bucket) {
        out.push(format!(
            "trail.bucket: `{}` is not an S3 bucket name (needed by source.kind = athena or s3)",
            trail.bucket
        ));
    }
    if !trail.prefix.is_empty()
        && (trail.prefix.starts_with('/')
            || trail.prefix.ends_with('/')
            || trail.prefix.contains(['\'', '"', '\\']))
    {
        out.push(format!(
            "trail.prefix: `{}` must have no slash at either end and no quotes",
            trail.prefix
        ));
    } else if source.kind == SourceKind::Athena && !is_sql_safe_prefix(&trail.prefix) {
        // The Athena table's LOCATION and projection template are SQL literals: refused here,
        // on load, rather than when the first statement is rendered.
        out.push(format!(
            "trail.prefix: `{}` must be S3's safe key characters (letters, digits, ! - _ . * ( ) /) \
             with no `//` for the Athena source",
            trail.prefix
        ));
    }
    if let Some(org) = &trail.org_id {
        let id_ok = org.strip_prefix("o-").is_some_and(|rest| {
            !rest.is_empty()
                && org.len() <= 34
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if !id_ok {
            out.push(format!(
                "trail.org_id: `{org}` is not an organization id like o-a1b2c3d4e5"
            ));
        }
    }
    for r in &trail.regions {
        if Region::parse(r).is_err() {
            out.push(format!("trail.regions: `{r}` is not a region name"));
        }
    }
    if source.kind == SourceKind::Athena {
        if !is_name(&athena.workgroup, &['-', '_', '.'], 128) {
            out.push(format!(
                "athena.workgroup: `{}` is not a workgroup name",
                athena.workgroup
            ));
        }
        for (field, name) in [
            ("athena.database", &athena.database),
            ("athena.table", &athena.table),
        ] {
            let ok = is_name(name, &['_'], 128) && name.chars().all(|c| !c.is_ascii_uppercase());
            if !ok {
                out.push(format!(
                    "{field}: `{name}` must be lowercase letters, digits and underscores"
                ));
            }
        }
        if !athena.output_location.is_empty() && !athena.output_location.starts_with("s3://") {
            out.push(format!(
                "athena.output_location: `{}` must be an s3:// URL",
                athena.output_location
            ));
        }
        let start = athena.projection_start.as_bytes();
        let date_ok = start.len() == 10
            && start[4] == b'/'
            && start[7] == b'/'
            && athena
                .projection_start
                .replace('/', "")
                .chars()
                .all(|c| c.is_ascii_digit());
        if !date_ok {
            out.push(format!(
                "athena.projection_start: `{}` must be a day like 2020/01/01",
                athena.projection_start
            ));
        }
        if athena.query_timeout < Span::seconds(10) {
            out.push("athena.query_timeout must be at least 10s".into());
        }
        if athena.throttle_patience < Span::seconds(10) || athena.throttle_patience > Span::hours(1)
        {
            out.push("athena.throttle_patience must be within 10s..=1h".into());
        }
    }
    if store.kind == StoreKind::Dynamodb && !is_name(&store.table, &['-', '_', '.'], 255) {
        out.push(format!(
            "store.table: `{}` is not a DynamoDB table name",
            store.table
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused_before_they_reach_sql_or_an_api() {
        let muster = MusterConfig {
            accounts: vec!["1234' OR '1'='1".into()],
            include_ous: vec!["ou-x; DROP".into()],
            include_tags: vec!["novalue".into()],
            assume_role_arn: Some("not-an-arn".into()),
            ..MusterConfig::default()
        };
        let source = SourceConfig {
            kind: SourceKind::Athena,
        };
        let trail = TrailConfig {
            bucket: "Bad_Bucket".into(),
            prefix: "x'/".into(),
            org_id: Some("o-'".into()),
            regions: vec!["us-east-1; --".into()],
        };
        let athena = AthenaConfig {
            database: "db; drop".into(),
            table: "T".into(),
            output_location: "http://x".into(),
            projection_start: "2020-01-01".into(),
            ..AthenaConfig::default()
        };
        let store = StoreConfig {
            kind: StoreKind::Dynamodb,
            table: "a b".into(),
        };
        let p = problems(&muster, &source, &trail, &athena, &store);
        assert_eq!(p.len(), 13, "{p:#?}");
    }

    #[test]
    fn what_the_athena_statements_would_refuse_is_refused_on_load() {
        let athena = SourceConfig {
            kind: SourceKind::Athena,
        };
        let trail = TrailConfig {
            bucket: "trail-bucket".into(),
            prefix: "logs; DROP TABLE x".into(),
            org_id: Some("o-ABC123".into()),
            regions: vec!["us-east-1".into()],
        };
        let on = |source: &SourceConfig| {
            problems(
                &MusterConfig::default(),
                source,
                &trail,
                &AthenaConfig::default(),
                &StoreConfig::default(),
            )
        };
        let p = on(&athena);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("trail.prefix") && p[1].starts_with("trail.org_id"));
        // Other sources put the prefix in S3 key prefixes only, which may hold such text.
        assert_eq!(on(&SourceConfig::default()).len(), 1);
        assert!(is_sql_safe_prefix("trail(prod)!*-_.x/y"));
    }

    #[test]
    fn defaults_have_no_problems() {
        let p = problems(
            &MusterConfig::default(),
            &SourceConfig::default(),
            &TrailConfig::default(),
            &AthenaConfig::default(),
            &StoreConfig::default(),
        );
        assert!(p.is_empty(), "{p:?}");
    }
}
