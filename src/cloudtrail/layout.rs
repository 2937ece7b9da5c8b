//! Where CloudTrail puts its objects and what their names say.
//!
//! `AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_RAND.json.gz`
//! The name carries the account, the region and the *delivery* time; the folder dates are the
//! same delivery day. Digest and Insight objects live beside the logs and are not events.

use super::ids::{AccountId, Region};
use super::time::Timestamp;

/// What a delivered object is, judged by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A log file of events.
    Log,
    /// An integrity digest (`CloudTrail-Digest`): no events.
    Digest,
    /// A CloudTrail Insights file: aggregated, not API calls.
    Insight,
}

/// What a CloudTrail object name tells about its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectName {
    pub account: AccountId,
    pub region: Region,
    /// Delivery time, to the minute.
    pub delivered: Timestamp,
    pub kind: ObjectKind,
}

/// Parses the last path segment of a CloudTrail object; `None` for any other name.
pub fn parse_object_name(file_name: &str) -> Option<ObjectName> {
    let mut parts = file_name.split('_');
    let account = AccountId::parse(parts.next()?).ok()?;
    let kind = match parts.next()? {
        "CloudTrail" => ObjectKind::Log,
        "CloudTrail-Digest" => ObjectKind::Digest,
        "CloudTrail-Insight" => ObjectKind::Insight,
        _ => return None,
    };
    let region = Region::parse(parts.next()?).ok()?;
    let delivered = match kind {
        // ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHmmssZ.json.gz
        ObjectKind::Digest => {
            let stamp = file_name.rsplit('_').next()?.split('.').next()?;
            let minute = stamp.get(..13)?.to_string() + "Z";
            Timestamp::parse_compact(&minute)?
        }
        _ => Timestamp::parse_compact(parts.next()?)?,
    };
    Some(ObjectName {
        account,
        region,
        delivered,
        kind,
    })
}

/// Recognises digest and insight objects by folder as well as by name, for copies that were
/// renamed on the way.
pub fn is_non_event_folder(path: &str) -> bool {
    // Asked for every file of a walk: a byte split, which needs no searcher set up per call.
    path.as_bytes()
        .split(|&b| b == b'/' || b == b'\\')
        .any(|p| p == b"CloudTrail-Digest" || p == b"CloudTrail-Insight")
}

/// The S3 key prefix of one account's logs for one region and day, as CloudTrail writes it.
pub fn day_prefix(
    org: Option<&str>,
    account: &AccountId,
    region: &Region,
    day: Timestamp,
) -> String {
    let (y, m, d) = day.date();
    let org = org.map(|o| format!("{o}/")).unwrap_or_default();
    format!("AWSLogs/{org}{account}/CloudTrail/{region}/{y:04}/{m:02}/{d:02}/")
}

/// The object name CloudTrail gives a log file delivered at `delivered`.
pub fn object_file_name(
    account: &AccountId,
    region: &Region,
    delivered: Timestamp,
    rand: &str,
) -> String {
    format!(
        "{account}_CloudTrail_{region}_{}_{rand}.json.gz",
        delivered.compact()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_give_account_region_and_delivery_minute() {
        let n = parse_object_name(
            "218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json",
        )
        .unwrap();
        assert_eq!(n.account.as_str(), "218007301253");
        assert_eq!(n.region.as_str(), "us-east-1");
        assert_eq!(n.delivered.to_string(), "2023-07-10T11:45:00Z");
        assert_eq!(n.kind, ObjectKind::Log);
    }

    #[test]
    fn digests_and_insights_are_recognised() {
        let d = parse_object_name(
            "111122223333_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20231001T120000Z.json.gz",
        )
        .unwrap();
        assert_eq!(d.kind, ObjectKind::Digest);
        let i = parse_object_name(
            "111122223333_CloudTrail-Insight_eu-west-1_20231001T1200Z_abc.json.gz",
        )
        .unwrap();
        assert_eq!(i.kind, ObjectKind::Insight);
        assert!(is_non_event_folder(
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x.json.gz"
        ));
    }

    #[test]
    fn other_names_are_not_cloudtrail_objects() {
        for name in [
            "CreateUser.json.cloudtrail",
            "index.html",
            "1234_CloudTrail_us-east-1_x_y.json",
        ] {
            assert!(parse_object_name(name).is_none(), "{name}");
        }
    }

    #[test]
    fn names_and_prefixes_round_trip() {
        let a = AccountId::parse("111122223333").unwrap();
        let r = Region::parse("eu-west-1").unwrap();
        let t = Timestamp::parse("2024-01-02T03:04:00Z").unwrap();
        let name = object_file_name(&a, &r, t, "abc");
        assert_eq!(parse_object_name(&name).unwrap().delivered, t);
        assert_eq!(
            day_prefix(Some("o-abc"), &a, &r, t),
            "AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/2024/01/02/"
        );
    }
}
