//! The resources each account runs and the `requestParameters` calls on them carry.
//!
//! Parameters are small and plausible, not complete: enough for an analyst to see which bucket,
//! role or function a call touched. Reads that CloudTrail records without parameters get `null`.

use serde_json::{json, Value};

use super::org::Account;
use super::rng::Rng;

/// Names and ids of the resources in one account, stable for the account.
pub struct Resources {
    pub env: &'static str,
    pub account: String,
    pub region: &'static str,
    pub function: &'static str,
    pub cluster: String,
    pub service: &'static str,
    pub table: &'static str,
    pub artifacts_bucket: String,
    pub state_bucket: String,
    pub task_role: &'static str,
    pub key_id: String,
    pub security_group: String,
    pub vpc: String,
}

impl Resources {
    pub fn of(account: &Account) -> Resources {
        let id = account.id.as_str();
        // Seeded by the account id so every persona sees the same ids.
        let mut rng = Rng::stream(id.parse::<u64>().unwrap_or(0), "resources");
        let env = match account.name {
            "acme-prod" => "prod",
            "acme-dev" => "dev",
            _ => "security",
        };
        Resources {
            env,
            account: id.to_string(),
            region: account.home,
            function: account.lambda_function,
            cluster: format!("{env}-cluster"),
            service: "orders-api",
            table: "orders",
            artifacts_bucket: format!("acme-{env}-artifacts-{}", &id[8..]),
            state_bucket: format!("acme-{env}-tfstate-{}", &id[8..]),
            task_role: "orders-api-task",
            key_id: rng.uuid(),
            security_group: format!("sg-0{}", rng.hex(16)),
            vpc: format!("vpc-0{}", rng.hex(16)),
        }
    }

    pub fn key_arn(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region, self.account, self.key_id
        )
    }

    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.function
        )
    }

    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.function)
    }
}

fn bucket_call(bucket: &str, region: &str, sub: &str) -> Value {
    let mut v =
        json!({ "bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com") });
    v[sub] = json!("");
    v
}

/// The request of a routine call on the account's own resources; `None` is written as `null`.
pub fn request(action: &str, r: &Resources) -> Option<Value> {
    let v = match action {
        "ec2:DescribeInstances" => json!({ "instancesSet": {}, "filterSet": {} }),
        "ec2:DescribeInstanceStatus" => {
            json!({ "instancesSet": {}, "filterSet": {}, "includeAllInstances": false })
        }
        "ec2:DescribeSecurityGroups" => {
            json!({ "securityGroupSet": {}, "securityGroupIdSet": { "items": [{ "groupId": r.security_group }] }, "filterSet": {} })
        }
        "ec2:DescribeSecurityGroupRules" => json!({
            "DescribeSecurityGroupRulesRequest": {
                "Filter": { "Name": "group-id", "Value": { "content": r.security_group, "tag": 1 }, "tag": 1 }
            }
        }),
        "ec2:DescribeVpcs" => {
            json!({ "vpcSet": { "items": [{ "vpcId": r.vpc }] }, "filterSet": {} })
        }
        "ec2:DescribeVpcAttribute" => json!({ "vpcId": r.vpc, "attribute": "enableDnsSupport" }),
        "ec2:DescribeSubnets" => {
            json!({ "subnetSet": {}, "filterSet": { "items": [{ "name": "vpc-id", "valueSet": { "items": [{ "value": r.vpc }] } }] } })
        }
        "ec2:DescribeRouteTables" => json!({ "routeTableIdSet": {}, "filterSet": {} }),
        "ec2:DescribeVolumes" => json!({ "volumeSet": {}, "filterSet": {} }),
        "ec2:DescribeNetworkInterfaces" => json!({ "networkInterfaceIdSet": {}, "filterSet": {} }),
        "ec2:DescribeAddresses" => {
            json!({ "publicIpsSet": {}, "allocationIdsSet": {}, "filterSet": {} })
        }
        "iam:GetRole" | "iam:ListRolePolicies" | "iam:ListAttachedRolePolicies" => {
            json!({ "roleName": r.task_role })
        }
        "iam:GetRolePolicy" => {
            json!({ "roleName": r.task_role, "policyName": "orders-table-access" })
        }
        "iam:GetPolicy" => {
            json!({ "policyArn": format!("arn:aws:iam::{}:policy/orders-api-access", r.account) })
        }
        "iam:GetPolicyVersion" => json!({
            "policyArn": format!("arn:aws:iam::{}:policy/orders-api-access", r.account),
            "versionId": "v4"
        }),
        "iam:ListRoles" | "iam:ListUsers" => json!({ "maxItems": 1000 }),
        "s3:ListBuckets" => json!({ "Host": "s3.amazonaws.com" }),
        "s3:GetBucketPolicy" => bucket_call(&r.artifacts_bucket, r.region, "policy"),
        "s3:GetBucketVersioning" => bucket_call(&r.state_bucket, r.region, "versioning"),
        "s3:GetBucketEncryption" => bucket_call(&r.artifacts_bucket, r.region, "encryption"),
        "s3:GetBucketPublicAccessBlock" => {
            bucket_call(&r.artifacts_bucket, r.region, "publicAccessBlock")
        }
        "s3:GetBucketTagging" => bucket_call(&r.artifacts_bucket, r.region, "tagging"),
        "s3:GetBucketAcl" => bucket_call(&r.artifacts_bucket, r.region, "acl"),
        "s3:GetBucketLocation" => bucket_call(&r.artifacts_bucket, r.region, "location"),
        "lambda:GetFunction20150331v2"
        | "lambda:ListVersionsByFunction20150331"
        | "lambda:GetFunctionCodeSigningConfig" => json!({ "functionName": r.function }),
        "logs:DescribeLogGroups" => json!({ "logGroupNamePrefix": "/aws/lambda/" }),
        "logs:DescribeLogStreams" => json!({
            "logGroupName": r.log_group(), "orderBy": "LastEventTime", "descending": true
        }),
        "logs:ListTagsForResource" => json!({
            "resourceArn": format!("arn:aws:logs:{}:{}:log-group:{}", r.region, r.account, r.log_group())
        }),
        "dynamodb:DescribeTable"
        | "dynamodb:DescribeContinuousBackups"
        | "dynamodb:DescribeTimeToLive" => {
            json!({ "tableName": r.table })
        }
        "kms:DescribeKey" | "kms:GetKeyRotationStatus" => json!({ "keyId": r.key_arn() }),
        "kms:GetKeyPolicy" => json!({ "keyId": r.key_arn(), "policyName": "default" }),
        "ecs:DescribeClusters" => json!({ "clusters": [r.cluster], "include": ["TAGS"] }),
        "ecs:ListServices" => json!({ "cluster": r.cluster }),
        "ecs:DescribeServices" => json!({ "cluster": r.cluster, "services": [r.service] }),
        "ecs:DescribeTaskDefinition" => json!({ "taskDefinition": r.service, "include": ["TAGS"] }),
        "ssm:GetParameter" => {
            json!({ "name": format!("/{}/{}/config", r.env, r.function), "withDecryption": true })
        }
        "secretsmanager:GetSecretValue" => {
            json!({ "secretId": format!("{}/{}/db", r.env, r.function) })
        }
        "cloudtrail:DescribeTrails" => json!({ "trailNameList": [], "includeShadowTrails": true }),
        "cloudtrail:LookupEvents" => json!({ "maxResults": 50 }),
        "tagging:GetResources" => {
            json!({ "resourcesPerPage": 100, "includeComplianceDetails": false })
        }
        "rds:DescribeDBInstances" | "rds:DescribeDBClusters" => json!({ "maxRecords": 100 }),
        "monitoring:DescribeAlarms" => json!({ "maxRecords": 100 }),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_calls_name_the_bucket_and_the_subresource() {
        let v = bucket_call("b", "eu-west-1", "policy");
        assert_eq!(v["bucketName"], "b");
        assert_eq!(v["Host"], "b.s3.eu-west-1.amazonaws.com");
        assert_eq!(v["policy"], "");
    }
}
