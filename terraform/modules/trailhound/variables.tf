# ---------------------------------------------------------------------------------------------
# Naming

variable "name" {
  description = "Name of the deployment: the prefix of every resource name (state machine, cluster, table, bucket, roles). 3-24 lower case letters, digits and hyphens (the bucket and role name prefixes built from it have length limits)."
  type        = string
  default     = "trailhound"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name))
    error_message = "name must be 3-24 characters of lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# The container

variable "image_tag" {
  description = "Tag of the trailhound image in the module's ECR repository (the repository has immutable tags: push a new tag for each build, e.g. the version or a commit id). Ignored when container_image is set."
  type        = string
  default     = null
}

variable "container_image" {
  description = "Full image reference to run instead of <module's ECR repository>:<image_tag>, e.g. an image in another registry. The execution role can pull only from the module's repository; grant more yourself if you point elsewhere."
  type        = string
  default     = null
}

variable "task_cpu" {
  description = "Fargate CPU units of one task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate memory of one task, in MiB; must suit task_cpu."
  type        = number
  default     = 2048
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_level" {
  description = "RUST_LOG of the container (error, warn, info, debug; or per-module filters). Logs are JSON lines in CloudWatch."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the task and state machine logs."
  type        = number
  default     = 365
}

# ---------------------------------------------------------------------------------------------
# Network: the tasks run in your VPC and need to reach AWS APIs (through a NAT gateway or VPC
# endpoints) and your Splunk HEC.

variable "vpc_id" {
  description = "VPC of the tasks; the module's security group is created there."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the Fargate tasks run in (private subnets with a NAT gateway or VPC endpoints for ECR, S3, CloudWatch Logs, Athena, Glue, DynamoDB, Secrets Manager, STS and Organizations)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet."
  }
}

variable "assign_public_ip" {
  description = "Give the tasks a public IP (only for public subnets without NAT; keep false otherwise)."
  type        = bool
  default     = false
}

variable "security_group_ids" {
  description = "Security groups of the tasks. Empty: the module creates one that allows outbound TCP to egress_tcp_ports and nothing inbound."
  type        = list(string)
  default     = []
}

variable "egress_tcp_ports" {
  description = "Outbound TCP ports the module's security group allows (443 for AWS APIs and ECR; add 8088 when your HEC listens there)."
  type        = list(number)
  default     = [443]
}

variable "egress_cidr_blocks" {
  description = "Destinations of the module's security group's outbound rules."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# ---------------------------------------------------------------------------------------------
# Schedule and fan-out

variable "schedule_expression" {
  description = "When EventBridge Scheduler starts a hunt: rate(...), cron(...) or at(...). Each hunt covers, per account, the delivery time since that account's last hunt, so the period only sets how fresh findings are."
  type        = string
  default     = "rate(1 hour)"
}

variable "schedule_timezone" {
  description = "Time zone of a cron() schedule_expression."
  type        = string
  default     = "UTC"
}

variable "schedule_enabled" {
  description = "Whether the schedule runs (false: deploy everything, start hunts by hand)."
  type        = bool
  default     = true
}

variable "single_task_mode" {
  description = "true: one ECS task runs `trailhound hunt` over every account (small organizations). false: a muster task lists the accounts and a Distributed Map runs `trailhound account --id` for each in its own task."
  type        = bool
  default     = false
}

variable "max_concurrency" {
  description = "Distributed Map: accounts hunted at once (ECS tasks running at the same time). With the Athena source each runs its queries one after another; keep it under the account's Athena concurrency quota."
  type        = number
  default     = 10

  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be within 1..1000."
  }
}

variable "task_retry_attempts" {
  description = "Times an ECS task (muster, one account, or the single hunt) is started again after it failed. Hunts are safe to repeat: an account's watermark only moves when its window is committed."
  type        = number
  default     = 2
}

variable "task_timeout_seconds" {
  description = "A state machine task (one ECS task) that runs longer than this is stopped and counts as failed."
  type        = number
  default     = 3000
}

variable "failure_topic_arn" {
  description = "SNS topic told when accounts could not be hunted (optional). If the topic is encrypted with a customer managed key, its key policy must let the state machine role use it."
  type        = string
  default     = null
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the metrics each execution records (dimension StateMachine): AccountsHunted and AccountsFailed (map mode), and RunFailed, 1 when the run failed as a whole (the muster task, the map itself, or the single-task hunt) and 0 otherwise. Alarm on AccountsFailed > 0 or RunFailed > 0."
  type        = string
  default     = "Trailhound"
}

# ---------------------------------------------------------------------------------------------
# The CloudTrail logs

variable "cloudtrail_bucket" {
  description = "The bucket CloudTrail delivers to (an organization trail, or per-account trails into one bucket). Its bucket policy must let the task role read it when it is in another account (see outputs.task_role_arn)."
  type        = string
}

variable "cloudtrail_prefix" {
  description = "Key prefix before AWSLogs/ in the CloudTrail bucket, without slashes at the ends; empty for none."
  type        = string
  default     = ""

  validation {
    condition     = !startswith(var.cloudtrail_prefix, "/") && !endswith(var.cloudtrail_prefix, "/")
    error_message = "cloudtrail_prefix must not start or end with a slash."
  }
}

variable "cloudtrail_kms_key_arn" {
  description = "KMS key the trail encrypts its objects with (SSE-KMS), if any; the task role may decrypt with it. Its key policy must allow the task role too when it lives in another account."
  type        = string
  default     = null
}

variable "cloudtrail_org_id" {
  description = "Organization id (o-...) for an organization trail: CloudTrail writes AWSLogs/<org id>/<account>/... . null for per-account trails."
  type        = string
  default     = null
}

variable "trail_regions" {
  description = "Regions the trail delivers for; every hunt reads these. Empty: the S3 source discovers each account's region folders (one more list call per account), and the Athena source cannot run (set it)."
  type        = list(string)
  default     = []
}

variable "source_kind" {
  description = "Where activity comes from: \"athena\" (one query per account and window; run `trailhound tables` once after apply) or \"s3\" (the trail bucket read object by object)."
  type        = string
  default     = "athena"

  validation {
    condition     = contains(["athena", "s3"], var.source_kind)
    error_message = "source_kind must be athena or s3."
  }
}

# ---------------------------------------------------------------------------------------------
# Athena

variable "athena_database" {
  description = "Glue database of the CloudTrail table (lower case letters, digits, underscores)."
  type        = string
  default     = "trailhound"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,254}$", var.athena_database))
    error_message = "athena_database must be lower case letters, digits and underscores, starting with a letter."
  }
}

variable "athena_table" {
  description = "Name of the CloudTrail table `trailhound tables` creates in athena_database."
  type        = string
  default     = "cloudtrail"
}

variable "athena_partitions" {
  description = "\"projection\" (partition projection: no partition DDL ever) or \"managed\" (the hunt adds exactly the partitions a window needs)."
  type        = string
  default     = "projection"

  validation {
    condition     = contains(["projection", "managed"], var.athena_partitions)
    error_message = "athena_partitions must be projection or managed."
  }
}

variable "athena_projection_start" {
  description = "First day (YYYY/MM/DD) partition projection enumerates."
  type        = string
  default     = "2020/01/01"
}

variable "athena_query_timeout" {
  description = "How long one Athena query may wait and run before the account's hunt fails (a trailhound span: 30s, 10m, 1h)."
  type        = string
  default     = "10m"
}

variable "athena_bytes_scanned_cutoff_per_query" {
  description = "Athena cancels any query of the workgroup that scans more than this many bytes (at least 10 MB). The default, 100 GB, is far above an hourly window of a large organization and stops a runaway query."
  type        = number
  default     = 107374182400

  validation {
    condition     = var.athena_bytes_scanned_cutoff_per_query >= 10485760
    error_message = "athena_bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB)."
  }
}

variable "results_expiration_days" {
  description = "Days the results bucket keeps Athena results and Step Functions account lists before they expire."
  type        = number
  default     = 30
}

variable "results_bucket_access_log_bucket" {
  description = "Bucket that receives S3 server access logs of the results bucket (optional)."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete the results bucket with objects in it and the ECR repository with images in it."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# State

variable "dynamodb_deletion_protection" {
  description = "Protect the DynamoDB table (baselines, watermarks, findings outbox) from deletion."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Accounts ([muster] of the config)

variable "accounts_from" {
  description = "Where the accounts to hunt come from: \"organizations\" (ListAccounts through management_role_arn, ACTIVE accounts only) or \"static\" (exactly `accounts`)."
  type        = string
  default     = "organizations"

  validation {
    condition     = contains(["organizations", "static"], var.accounts_from)
    error_message = "accounts_from must be organizations or static."
  }
}

variable "management_role_arn" {
  description = "Role in the management account (or a delegated administrator) that the tasks assume for the Organizations calls: the role of the management-account-role module. Required with accounts_from = \"organizations\": the task role itself is granted no Organizations action."
  type        = string
  default     = null
}

variable "accounts" {
  description = "With accounts_from = \"static\": the accounts. With organizations: an allow-list when not empty."
  type        = list(string)
  default     = []
}

variable "exclude_accounts" {
  description = "Accounts never hunted."
  type        = list(string)
  default     = []
}

variable "include_ous" {
  description = "Only accounts under these organizational units (ou-... or the root r-...), directly or below."
  type        = list(string)
  default     = []
}

variable "exclude_ous" {
  description = "Accounts under these organizational units are not hunted."
  type        = list(string)
  default     = []
}

variable "include_tags" {
  description = "Only accounts carrying one of these tags, written key=value."
  type        = list(string)
  default     = []
}

variable "exclude_tags" {
  description = "Accounts carrying one of these tags (key=value) are not hunted."
  type        = list(string)
  default     = []
}

variable "hunt_concurrency" {
  description = "single_task_mode: accounts one `trailhound hunt` hunts at once ([muster] concurrency, 1..100). 20 keeps within Athena's lowest default quota of active queries."
  type        = number
  default     = 20
}

# ---------------------------------------------------------------------------------------------
# Splunk HEC ([[sinks.hec]] of the config). The token lives in the module's Secrets Manager
# secret; its value is set outside Terraform (see outputs.hec_secret_arn).

variable "hec_url" {
  description = "Base URL of the Splunk HTTP Event Collector, e.g. https://splunk.example.com:8088. null: no HEC sink (findings only in the task logs)."
  type        = string
  default     = null
}

variable "hec_index" {
  description = "Splunk index of the events (null: the token's default)."
  type        = string
  default     = null
}

variable "hec_token_secret_key" {
  description = "When the secret holds a JSON object: the field with the token. null when the secret's value is the token itself."
  type        = string
  default     = null
}

variable "hec_acks" {
  description = "Use indexer acknowledgement (the HEC token must have it turned on)."
  type        = bool
  default     = false
}

variable "hec_ca_bundle" {
  description = "Path inside the image of a PEM file of certificate authorities to trust for the HEC (null: the system's)."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# The rest of the config

variable "config_extra_toml" {
  description = "More trailhound config (TOML), e.g. [hunt], [ignore], [always_alert], [severity], [rules] tables. It is placed before the tables the module writes, which it must not repeat: [muster], [source], [trail], [athena], [store], [sinks]."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# Encryption

variable "kms_deletion_window_days" {
  description = "Days before the module's KMS key is deleted after `terraform destroy` (7-30)."
  type        = number
  default     = 30
}
