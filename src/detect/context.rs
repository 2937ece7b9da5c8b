//! The context of a call that says *where from* and *with what*: the source network and the
//! client family. Stolen credentials are mostly used for actions the victim already does, but
//! from somewhere new and with another tool, so these are remembered per principal.

use std::net::IpAddr;

/// The network of a source address, folded to a prefix (`203.0.113.0/24`), or `None` for
/// sources that are AWS itself (`AWS Internal`, `ec2.amazonaws.com`): those say nothing about
/// where the caller sits.
pub fn network(source: &str, v4_prefix: u8, v6_prefix: u8) -> Option<String> {
    let ip: IpAddr = source.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let p = u32::from(v4_prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            format!("{}/{p}", std::net::Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let p = u32::from(v6_prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            format!("{}/{p}", std::net::Ipv6Addr::from(bits & mask))
        }
    })
}

/// The family of a user agent with versions folded away: `aws-cli`, `boto3`, `aws-sdk-go`,
/// `terraform`, `console`, ... `None` for AWS's own internal callers.
pub fn client_family(agent: &str) -> Option<String> {
    let a = agent.trim();
    let lower = a.to_ascii_lowercase();
    if lower.is_empty()
        || lower == "aws internal"
        || lower.ends_with(".amazonaws.com") && !lower.contains(' ')
    {
        return None;
    }
    let known: &[(&str, &str)] = &[
        ("aws-cli/", "aws-cli"),
        ("terraform", "terraform"),
        ("boto3/", "boto3"),
        ("botocore/", "botocore"),
        ("amazon-ssm-agent", "ssm-agent"),
        ("aws-sdk-go-v2", "aws-sdk-go-v2"),
        ("aws-sdk-go", "aws-sdk-go"),
        ("aws-sdk-java", "aws-sdk-java"),
        ("aws-sdk-js", "aws-sdk-js"),
        ("aws-sdk-nodejs", "aws-sdk-js"),
        ("aws-sdk-dotnet", "aws-sdk-dotnet"),
        ("aws-sdk-rust", "aws-sdk-rust"),
        ("aws-sdk-ruby", "aws-sdk-ruby"),
        ("aws-sdk-php", "aws-sdk-php"),
        ("aws-powershell", "aws-powershell"),
        ("cloudformation", "cloudformation"),
        ("console.amazonaws.com", "console"),
        ("console.aws.amazon.com", "console"),
        ("signin.amazonaws.com", "console"),
        ("s3console", "console"),
        ("aws-internal", "aws-internal"),
        ("mozilla/", "browser"),
    ];
    if let Some((_, family)) = known.iter().find(|(needle, _)| lower.contains(needle)) {
        return Some((*family).to_string());
    }
    // Unknown tools: the first word, without its version.
    let word: String = lower
        .trim_start_matches('[')
        .split(['/', ' ', '(', ';'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(40)
        .collect();
    let word = word.trim_matches(['-', '.', '_']).to_string();
    (!word.is_empty()).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_fold_to_their_network() {
        assert_eq!(
            network("203.0.113.77", 24, 48).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network("2001:db8:1:2::5", 24, 48).as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(network("AWS Internal", 24, 48), None);
        assert_eq!(network("ec2.amazonaws.com", 24, 48), None);
    }

    #[test]
    fn user_agents_fold_to_families() {
        let f = |s| client_family(s);
        assert_eq!(
            f("aws-cli/2.13.0 Python/3.11.4 Linux/5.15").as_deref(),
            Some("aws-cli")
        );
        assert_eq!(
            f("Boto3/1.28.1 md/Botocore#1.31.1 ua/2.0").as_deref(),
            Some("boto3")
        );
        assert_eq!(f("APN/1.0 HashiCorp/1.0 Terraform/1.5.2 (+https://www.terraform.io) terraform-provider-aws/5.7.0").as_deref(), Some("terraform"));
        assert_eq!(
            f("aws-sdk-go/1.44.298 (go1.20.5; linux; amd64)").as_deref(),
            Some("aws-sdk-go")
        );
        assert_eq!(
            f("amazon-ssm-agent/3.2.582.0").as_deref(),
            Some("ssm-agent")
        );
        assert_eq!(f("AWS Internal"), None);
        assert_eq!(f("ssm.amazonaws.com"), None);
        assert_eq!(f("curl/8.1.2").as_deref(), Some("curl"));
    }
}
