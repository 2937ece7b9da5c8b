//! User agents of the tools each persona uses: browsers behind the console, the AWS CLI,
//! Terraform, the SSM and CloudWatch agents, SDKs inside Lambda and on servers.
//!
//! Their shapes follow what current tools send, including the per-call details (the CLI's
//! command, Terraform's per-service `api/` part), because analysts read them.

use super::org::Browser;

pub const AWS_INTERNAL: &str = "AWS Internal";

pub fn browser(b: Browser) -> &'static str {
    match b {
        Browser::ChromeMac => {
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36"
        }
        Browser::FirefoxLinux => "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        Browser::EdgeWindows => {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
        }
        Browser::SafariMac => {
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/18.1 Safari/605.1.15"
        }
    }
}

/// `DescribeInstances` → `describe-instances`, as the CLI names its commands.
pub fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// AWS CLI v2 on a developer's Mac, running `service name`.
pub fn cli_mac(action: &str) -> String {
    let (service, name) = action.split_once(':').unwrap_or(("sts", action));
    format!(
        "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 \
         md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#{service}.{}",
        kebab(name)
    )
}

/// AWS CLI v2 as an intruder's Linux box sends it (older release, older agent format).
pub fn cli_linux(action: &str) -> String {
    let (service, name) = action.split_once(':').unwrap_or(("sts", action));
    format!(
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/{service}.{}",
        kebab(name)
    )
}

// A stable, plausible SDK module version per service, so one tool always reports the same one.
fn module_version(service: &str) -> String {
    let h = service
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("1.{}.{}", 20 + h % 40, h / 40 % 12)
}

/// Terraform's AWS provider calling `service` (the SDK names the module in `api/`).
pub fn terraform(action: &str) -> String {
    let service = action.split_once(':').map_or(action, |(s, _)| s);
    let api = match service {
        "monitoring" => "cloudwatch",
        "elasticloadbalancing" => "elasticloadbalancingv2",
        s => s,
    };
    format!(
        "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.82.2 \
         (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.7 ua/2.1 os/linux \
         lang/go#1.23.3 md/GOOS#linux md/GOARCH#amd64 api/{api}#{} m/C",
        module_version(api)
    )
}

/// The `configure-aws-credentials` action exchanging the GitHub OIDC token.
pub const GITHUB_ACTION: &str =
    "aws-sdk-js/3.716.0 ua/2.1 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.18.1 \
     api/sts#3.716.0 m/E,N configure-aws-credentials-for-github-actions";

pub const SSM_AGENT: &str =
    "aws-sdk-go/1.55.5 (go1.22.9; linux; amd64) amazon-ssm-agent/3.3.1142.0";

pub const CLOUDWATCH_AGENT: &str = "aws-sdk-go/1.55.5 (go1.22.7; linux; amd64) CWAgent/1.300049.1";

/// boto3 inside a Python Lambda function.
pub const LAMBDA_PYTHON: &str =
    "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#5.10.227-239.884.amzn2.x86_64 \
     md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 \
     cfg/retry-mode#legacy Botocore/1.35.36";

/// The JavaScript SDK inside a Node.js Lambda function.
pub fn lambda_node(action: &str) -> String {
    let service = action.split_once(':').map_or(action, |(s, _)| s);
    format!(
        "aws-sdk-js/3.692.0 ua/2.1 os/linux#5.10.227-239.884.amzn2.x86_64 lang/js md/nodejs#20.18.0 \
         exec-env/AWS_Lambda_nodejs20.x api/{service}#3.692.0"
    )
}

/// An old boto3 on the on-premises backup server.
pub const BACKUP_SERVER: &str =
    "Boto3/1.26.137 Python/3.9.16 Linux/4.18.0-477.27.1.el8_8.x86_64 Botocore/1.29.137";

pub const BILLING_SCRIPT: &str =
    "Boto3/1.34.162 md/Botocore#1.34.162 ua/2.0 os/linux#6.8.0-1014-aws \
     md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.162";

pub const MONITORING_VENDOR: &str =
    "vendor-collector/7.58.1 aws-sdk-go-v2/1.30.3 ua/2.1 os/linux lang/go#1.22.5 \
     md/GOOS#linux md/GOARCH#amd64";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_commands_are_kebab_case() {
        assert_eq!(kebab("GetCallerIdentity"), "get-caller-identity");
        assert!(cli_linux("sts:GetCallerIdentity").ends_with("command/sts.get-caller-identity"));
        assert!(terraform("monitoring:DescribeAlarms").contains("api/cloudwatch#1."));
    }
}
