//! `[sinks]`: where findings go besides standard output. Any number of JSON lines files and
//! Splunk HTTP Event Collectors at once, each with its own delivery state in the outbox.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use crate::cloudtrail::Span;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// Files every finding is appended to as one JSON line.
    pub jsonl: Vec<PathBuf>,
    /// Splunk HTTP Event Collectors, `[[sinks.hec]]`.
    pub hec: Vec<HecConfig>,
}

/// One Splunk HTTP Event Collector.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HecConfig {
    /// The name the outbox keeps this collector's delivery state under (`hec:<name>`). Changing
    /// the URL under the same name does not resend what was delivered.
    pub name: String,
    /// The collector's base URL, e.g. `https://splunk.example.com:8088`.
    pub url: String,
    /// The token: from this environment variable, ...
    pub token_env: Option<String>,
    /// ... or from this file (surrounding whitespace removed), ...
    pub token_file: Option<PathBuf>,
    /// ... or from this AWS Secrets Manager secret (name or ARN), whose value is the token or
    /// a JSON object holding it under `token_secret_key`.
    pub token_secret: Option<String>,
    pub token_secret_key: Option<String>,
    /// Event metadata. Unset `index` and `host` leave the token's defaults in place.
    pub index: Option<String>,
    pub host: Option<String>,
    pub source: String,
    pub sourcetype: String,
    /// The sourcetype of the run-health event sent at the end of every run.
    pub summary_sourcetype: String,
    /// At most this many events ...
    pub max_events: usize,
    /// ... and this many bytes (before compression) per request.
    pub max_bytes: usize,
    /// Compress request bodies.
    pub gzip: bool,
    /// One request (or acknowledgement poll) may take this long before it counts as failed.
    pub timeout: Span,
    /// Failed requests are retried, with jittered exponential backoff, for at most this long.
    pub retry_for: Span,
    /// The first backoff, in milliseconds; each further one doubles, up to 30 s.
    pub retry_initial_ms: u64,
    /// Use indexer acknowledgement: a finding counts as delivered only once Splunk says it is
    /// indexed. The token must have acknowledgement turned on.
    pub acks: bool,
    /// How long to wait for acknowledgements before leaving the findings pending.
    pub ack_timeout: Span,
    /// The channel (a GUID) for acknowledgements; a fresh one per run when unset.
    pub channel: Option<String>,
    /// PEM file of the certificate authorities to trust instead of the system's.
    pub ca_bundle: Option<PathBuf>,
    /// Verify the collector's certificate. Turning this off lets anyone on the path read the
    /// token and the findings; it is logged as a warning on every run.
    pub tls_verify: bool,
    /// Allow `http://` to a host other than loopback: the token crosses the network in clear.
    pub allow_plain_http: bool,
}

impl Default for HecConfig {
    fn default() -> Self {
        HecConfig {
            name: "splunk".into(),
            url: String::new(),
            token_env: None,
            token_file: None,
            token_secret: None,
            token_secret_key: None,
            index: None,
            host: None,
            source: "trailhound".into(),
            sourcetype: "trailhound:finding".into(),
            summary_sourcetype: "trailhound:run".into(),
            max_events: 500,
            max_bytes: 1_000_000,
            gzip: true,
            timeout: Span::seconds(30),
            retry_for: Span::minutes(5),
            retry_initial_ms: 500,
            acks: false,
            ack_timeout: Span::minutes(5),
            channel: None,
            ca_bundle: None,
            tls_verify: true,
            allow_plain_http: false,
        }
    }
}

/// Where a collector's token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Env(String),
    File(PathBuf),
    Secret { id: String, key: Option<String> },
}

impl HecConfig {
    /// The token's source; `None` when not exactly one is set (a config problem).
    pub fn token_source(&self) -> Option<TokenSource> {
        match (&self.token_env, &self.token_file, &self.token_secret) {
            (Some(v), None, None) => Some(TokenSource::Env(v.clone())),
            (None, Some(f), None) => Some(TokenSource::File(f.clone())),
            (None, None, Some(s)) => Some(TokenSource::Secret {
                id: s.clone(),
                key: self.token_secret_key.clone(),
            }),
            _ => None,
        }
    }
}

/// The scheme and host of a URL, when it is `http(s)://host[:port][/path]`.
pub fn url_parts(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    Some((scheme, host))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every problem of `[sinks]`, each naming its field.
pub fn problems(sinks: &SinksConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, hec) in sinks.hec.iter().enumerate() {
        let at = format!("sinks.hec[{i}]");
        let named = |field: &str| format!("{at}.{field}");
        if !names.insert(hec.name.as_str()) {
            out.push(format!(
                "{}: `{}` is used twice; each collector needs its own name",
                named("name"),
                hec.name
            ));
        }
        let name_ok = !hec.name.is_empty()
            && hec.name.len() <= 64
            && hec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            out.push(format!(
                "{}: `{}` must be 1-64 letters, digits, `-`, `_` or `.`",
                named("name"),
                hec.name
            ));
        }
        match url_parts(&hec.url) {
            None => out.push(format!(
                "{}: `{}` is not a URL like https://splunk.example.com:8088 (credentials in \
                 the URL are not accepted: give the token with token_env, token_file or \
                 token_secret)",
                named("url"),
                without_credentials(&hec.url)
            )),
            Some(("https", _)) => {}
            Some(("http", host)) => {
                if !is_loopback(host) && !hec.allow_plain_http {
                    out.push(format!(
                        "{}: plain http to {host} sends the token in clear; use https, or set allow_plain_http = true",
                        named("url")
                    ));
                }
            }
            Some((scheme, _)) => out.push(format!(
                "{}: scheme `{scheme}` is not http or https",
                named("url")
            )),
        }
        if hec.token_source().is_none() {
            out.push(format!(
                "{at}: set exactly one of token_env, token_file and token_secret"
            ));
        }
        if hec.token_secret_key.is_some() && hec.token_secret.is_none() {
            out.push(format!(
                "{}: only means something with token_secret",
                named("token_secret_key")
            ));
        }
        if let Some(var) = &hec.token_env {
            if !is_env_name(var) {
                // Not echoed: a token pasted here by mistake would be printed.
                out.push(format!(
                    "{}: is not an environment variable name (1-256 letters, digits and `_`, \
                     not starting with a digit); it names the variable that holds the token, \
                     not the token itself",
                    named("token_env")
                ));
            }
        }
        for (field, value) in [
            ("index", hec.index.as_deref()),
            ("host", hec.host.as_deref()),
            ("source", Some(hec.source.as_str())),
            ("sourcetype", Some(hec.sourcetype.as_str())),
            ("summary_sourcetype", Some(hec.summary_sourcetype.as_str())),
        ] {
            if let Some(v) = value {
                if v.trim().is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
                    out.push(format!(
                        "{}: must be non-empty text without control characters, at most 1024 bytes",
                        named(field)
                    ));
                }
            }
        }
        if !(1..=100_000).contains(&hec.max_events) {
            out.push(format!(
                "{}: {} must be within 1..=100000",
                named("max_events"),
                hec.max_events
            ));
        }
        if !(1024..=800_000_000).contains(&hec.max_bytes) {
            out.push(format!(
                "{}: {} must be within 1024..=800000000",
                named("max_bytes"),
                hec.max_bytes
            ));
        }
        for (field, span) in [("timeout", hec.timeout), ("ack_timeout", hec.ack_timeout)] {
            if span == Span::ZERO {
                out.push(format!("{}: must be longer than 0s", named(field)));
            }
        }
        if !(1..=60_000).contains(&hec.retry_initial_ms) {
            out.push(format!(
                "{}: {} must be within 1..=60000",
                named("retry_initial_ms"),
                hec.retry_initial_ms
            ));
        }
        if let Some(channel) = &hec.channel {
            if !is_guid(channel) {
                out.push(format!(
                    "{}: `{channel}` is not a GUID like 0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba",
                    named("channel")
                ));
            }
            if !hec.acks {
                out.push(format!(
                    "{}: only means something with acks = true",
                    named("channel")
                ));
            }
        }
        if hec.ca_bundle.is_some() && !hec.tls_verify {
            out.push(format!(
                "{at}: ca_bundle is set but tls_verify = false ignores it; choose one"
            ));
        }
    }
    let mut files = BTreeSet::new();
    for path in &sinks.jsonl {
        if path.as_os_str().is_empty() {
            out.push("sinks.jsonl: an empty path".into());
        } else if !files.insert(path) {
            out.push(format!("sinks.jsonl: {} is listed twice", path.display()));
        }
    }
    out
}

/// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. HEC tokens are GUIDs, so
/// a token put here by mistake is refused.
fn is_env_name(text: &str) -> bool {
    (1..=256).contains(&text.len())
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `url` with any `user:password@` before the host replaced by `***@`, for messages.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let shown = match authority.rfind('@') {
        Some(at) => format!("***{}", &authority[at..]),
        None => authority.to_string(),
    };
    if url.contains("://") {
        format!("{scheme}://{shown}{tail}")
    } else {
        format!("{shown}{tail}")
    }
}

/// A GUID in its 8-4-4-4-12 hexadecimal form.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hec(url: &str) -> HecConfig {
        HecConfig {
            url: url.into(),
            token_env: Some("HEC_TOKEN".into()),
            ..HecConfig::default()
        }
    }

    fn check(h: HecConfig) -> Vec<String> {
        problems(&SinksConfig {
            jsonl: vec![],
            hec: vec![h],
        })
    }

    #[test]
    fn a_plain_https_collector_is_fine() {
        assert!(check(hec("https://splunk.example.com:8088")).is_empty());
        assert!(check(hec("http://127.0.0.1:8088")).is_empty());
        assert!(check(hec("http://[::1]:8088/")).is_empty());
    }

    #[test]
    fn plain_http_elsewhere_needs_saying_so() {
        let p = check(hec("http://splunk.example.com:8088"));
        assert!(p[0].contains("in clear"), "{p:?}");
        let allowed = HecConfig {
            allow_plain_http: true,
            ..hec("http://splunk.example.com:8088")
        };
        assert!(check(allowed).is_empty());
    }

    #[test]
    fn token_needs_exactly_one_source() {
        let none = HecConfig {
            token_env: None,
            ..hec("https://s:8088")
        };
        assert!(check(none)[0].contains("exactly one"));
        let two = HecConfig {
            token_file: Some("/t".into()),
            ..hec("https://s:8088")
        };
        assert!(check(two)[0].contains("exactly one"));
    }

    #[test]
    fn bad_values_are_each_named() {
        let bad = HecConfig {
            name: "my splunk".into(),
            url: "ftp://x".into(),
            max_events: 0,
            channel: Some("not-a-guid".into()),
            index: Some("".into()),
            ..hec("")
        };
        let p = check(bad);
        for field in ["name", "url", "max_events", "channel", "index"] {
            assert!(
                p.iter().any(|m| m.contains(&format!(".{field}"))),
                "{field}: {p:#?}"
            );
        }
    }

    #[test]
    fn a_token_in_the_wrong_place_is_refused_without_being_repeated() {
        let token = "4e7b1c2a-7e57-4a11-b0b0-5ecre7000042";
        let p = check(HecConfig {
            token_env: Some(token.into()),
            url: format!("https://splunk:{token}@splunk.example.com:8088/services"),
            ..hec("")
        });
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p.iter().all(|m| !m.contains(token)), "{p:#?}");
        assert!(
            p[0].contains("https://***@splunk.example.com:8088/services"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("token_env: is not an environment variable name"),
            "{}",
            p[1]
        );
        assert!(is_env_name("TRAILHOUND_HEC_TOKEN") && is_env_name("_x1"));
        assert!(!is_env_name("1X") && !is_env_name("A-B") && !is_env_name(""));
    }

    /// The example config shows a collector commented out; uncommented, it is valid and says
    /// the defaults.
    #[test]
    fn the_example_collector_is_valid_and_shows_the_defaults() {
        let example = include_str!("../../trailhound.example.toml");
        let block = &example[example.find("# [[sinks.hec]]").expect("the example block")..];
        let text: String = block
            .lines()
            .filter(|l| !l.starts_with("# #"))
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let config = crate::config::Config::parse(&text, "example").expect("valid");
        let hec = &config.sinks.hec[0];
        let d = HecConfig::default();
        assert_eq!(hec.url, "https://splunk.example.com:8088");
        assert_eq!(
            (hec.max_events, hec.max_bytes, hec.timeout, hec.retry_for),
            (d.max_events, d.max_bytes, d.timeout, d.retry_for)
        );
        assert_eq!(
            (hec.acks, hec.ack_timeout, hec.gzip),
            (d.acks, d.ack_timeout, d.gzip)
        );
        assert_eq!(hec.sourcetype, d.sourcetype);
    }

    #[test]
    fn guids() {
        assert!(is_guid("0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba"));
        assert!(!is_guid("0aeeac95ac744aa9b30d6c4c0ac581ba"));
    }
}
