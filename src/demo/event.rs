//! One generated CloudTrail event: the [`Call`] builder that every persona and attack uses, and
//! the [`Event`] it becomes, a finished record text plus what delivery needs to know.
//!
//! Field order, header names and the small details (`readOnly` on STS and KMS reads, EC2's
//! `Client.` error prefix, `tlsDetails`, VPC endpoint markers) follow what real trails contain.

use serde_json::Value;

use crate::cloudtrail::Timestamp;

use super::identity::{Actor, Origin};
use super::json::Obj;
use super::org::Org;
use super::rng::Rng;

/// Why an event exists; delivery and the hunt-hour filter treat each differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Background activity: must look like what the history already holds.
    Routine,
    /// A rare but benign first in the hunt hour.
    Novelty,
    /// Part of the injected attack with this index in the manifest.
    Attack(usize),
}

/// A finished record and its place in the trail.
#[derive(Clone, Debug)]
pub struct Event {
    pub account: usize,
    pub region: &'static str,
    pub time: Timestamp,
    pub id: String,
    pub json: String,
    pub kind: Kind,
}

/// A call about to be recorded. `action` is `service:Name` with the service as it appears in
/// `eventSource` (`monitoring` for CloudWatch, `tagging` for the tagging API).
#[derive(Clone, Debug)]
pub struct Call {
    time: Timestamp,
    region: &'static str,
    service: String,
    name: String,
    read_only: bool,
    request: Option<Value>,
    response: Option<Value>,
    additional: Option<Value>,
    service_details: Option<Value>,
    resources: Option<Value>,
    error: Option<(String, String)>,
    event_type: &'static str,
    data: bool,
    version: &'static str,
}

// STS credential calls and KMS cryptography are recorded as reads although their names say
// otherwise; everything named like a read is one.
fn infer_read_only(name: &str) -> bool {
    const READS: [&str; 9] = [
        "Describe", "Get", "List", "Lookup", "Head", "Search", "BatchGet", "Detect", "Query",
    ];
    const ALSO: [&str; 8] = [
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "Federate",
        "GetFederationToken",
    ];
    READS.iter().any(|p| name.starts_with(p)) || ALSO.contains(&name)
}

/// The host name a client sent in its TLS handshake for this call.
fn host_header(service: &str, region: &str) -> String {
    match service {
        "iam" => "iam.amazonaws.com".to_string(),
        "signin" => "signin.aws.amazon.com".to_string(),
        "sso" => format!("portal.sso.{region}.amazonaws.com"),
        "sts" if region == "us-east-1" => "sts.amazonaws.com".to_string(),
        "s3" if region == "us-east-1" => "s3.amazonaws.com".to_string(),
        _ => format!("{service}.{region}.amazonaws.com"),
    }
}

/// The message AWS gives for an identity-policy denial.
pub fn denied_message(principal_arn: &str, action: &str) -> String {
    format!(
        "User: {principal_arn} is not authorized to perform: {action} because no identity-based \
         policy allows the {action} action"
    )
}

impl Call {
    pub fn new(time: Timestamp, region: &'static str, action: &str) -> Call {
        let (service, name) = action.split_once(':').unwrap_or(("unknown", action));
        Call {
            time,
            region,
            service: service.to_string(),
            name: name.to_string(),
            read_only: infer_read_only(name),
            request: None,
            response: None,
            additional: None,
            service_details: None,
            resources: None,
            error: None,
            event_type: "AwsApiCall",
            data: false,
            version: "1.09",
        }
    }

    pub fn req(mut self, request: Value) -> Self {
        self.request = Some(request);
        self
    }

    pub fn resp(mut self, response: Value) -> Self {
        self.response = Some(response);
        self
    }

    pub fn error(mut self, code: &str, message: &str) -> Self {
        self.error = Some((code.to_string(), message.to_string()));
        self
    }

    /// `additionalEventData`.
    pub fn extra(mut self, data: Value) -> Self {
        self.additional = Some(data);
        self
    }

    pub fn resources(mut self, resources: Value) -> Self {
        self.resources = Some(resources);
        self
    }

    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    pub fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// A console sign-in (`AwsConsoleSignIn`).
    pub fn sign_in(mut self) -> Self {
        self.event_type = "AwsConsoleSignIn";
        self.version = "1.08";
        self.read_only = false;
        self
    }

    /// Something a service did by itself (`AwsServiceEvent`), with its details.
    pub fn service_event(mut self, details: Value) -> Self {
        self.event_type = "AwsServiceEvent";
        self.version = "1.08";
        self.service_details = Some(details);
        self
    }

    /// A data-plane call, recorded only by trails that select data events.
    pub fn data_event(mut self) -> Self {
        self.data = true;
        self
    }

    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Renders the record.
    pub fn emit(self, org: &Org, actor: &Actor, rng: &mut Rng, kind: Kind) -> Event {
        let id = rng.uuid();
        let request_id = if self.service == "s3" {
            rng.iam_chars(16)
        } else {
            rng.uuid()
        };
        let recipient = org.account_id(actor.account);
        let mut o = Obj::with_capacity(1400)
            .str("eventVersion", self.version)
            .raw("userIdentity", &actor.identity)
            .str("eventTime", &self.time.to_string())
            .str("eventSource", &format!("{}.amazonaws.com", self.service))
            .str("eventName", &self.name)
            .str("awsRegion", self.region)
            .str("sourceIPAddress", &actor.ip)
            .str("userAgent", &actor.agent);
        if let Some((code, message)) = &self.error {
            o = o.str("errorCode", code).str("errorMessage", message);
        }
        o = o
            .value("requestParameters", self.request.as_ref())
            .value("responseElements", self.response.as_ref());
        if let Some(extra) = &self.additional {
            o = o.value("additionalEventData", Some(extra));
        }
        if self.event_type != "AwsServiceEvent" {
            o = o.str("requestID", &request_id);
        }
        o = o.str("eventID", &id).bool("readOnly", self.read_only);
        if let Some(resources) = &self.resources {
            o = o.value("resources", Some(resources));
        }
        o = o
            .str("eventType", self.event_type)
            .bool("managementEvent", !self.data)
            .str("recipientAccountId", recipient);
        if let Origin::Endpoint { vpce, owner } = &actor.origin {
            o = o
                .str("vpcEndpointId", vpce)
                .str("vpcEndpointAccountId", owner);
        }
        if let Some(details) = &self.service_details {
            o = o.value("serviceEventDetails", Some(details));
        }
        o = o.str(
            "eventCategory",
            if self.data { "Data" } else { "Management" },
        );
        if !matches!(actor.origin, Origin::Service) {
            // Older SDKs on older hosts still negotiate TLS 1.2.
            let old =
                actor.agent.contains("Boto3/1.26") || actor.agent.starts_with("aws-sdk-go/1.");
            let (version, suite) = if old {
                ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
            } else {
                ("TLSv1.3", "TLS_AES_128_GCM_SHA256")
            };
            let tls = Obj::new()
                .str("tlsVersion", version)
                .str("cipherSuite", suite)
                .str(
                    "clientProvidedHostHeader",
                    &host_header(&self.service, self.region),
                )
                .finish();
            o = o.raw("tlsDetails", &tls);
        }
        if matches!(actor.origin, Origin::Console) && self.event_type == "AwsApiCall" {
            o = o.str("sessionCredentialFromConsole", "true");
        }
        Event {
            account: actor.account,
            region: self.region,
            time: self.time,
            id,
            json: o.finish(),
            kind,
        }
    }
}

/// `Jul 10, 2023, 12:55:24 PM`: how STS writes credential expiry times.
pub fn sts_time(t: Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = t.date();
    let secs = t.unix().rem_euclid(86_400);
    let (h, mi, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let (h12, half) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    let month = MONTHS[((m - 1).clamp(0, 11)) as usize];
    format!("{month} {d}, {y}, {h12}:{mi:02}:{s:02} {half}")
}

/// A session token of plausible shape and length (real ones are several hundred characters;
/// these are shorter to keep the demo small).
pub fn session_token(rng: &mut Rng) -> String {
    format!("IQoJb3JpZ2luX2VjE{}", rng.alnum(150))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_inferred_like_cloudtrail_marks_them() {
        assert!(infer_read_only("DescribeInstances"));
        assert!(infer_read_only("AssumeRoleWithWebIdentity"));
        assert!(infer_read_only("Decrypt"));
        assert!(!infer_read_only("CreateAccessKey"));
        assert!(!infer_read_only("StopLogging"));
    }

    #[test]
    fn sts_expiry_times_use_a_twelve_hour_clock() {
        let t = Timestamp::parse("2023-07-10T12:55:24Z").unwrap();
        assert_eq!(sts_time(t), "Jul 10, 2023, 12:55:24 PM");
        let t = Timestamp::parse("2023-01-02T00:05:00Z").unwrap();
        assert_eq!(sts_time(t), "Jan 2, 2023, 12:05:00 AM");
    }
}
