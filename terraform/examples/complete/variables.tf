variable "region" {
  description = "Region of the deployment (the security or audit account's home region)."
  type        = string
}

variable "management_account_role_arn" {
  description = "A role Terraform assumes in the organization's management account to create the muster role there (e.g. OrganizationAccountAccessRole is in the member accounts, not here; use your management account's deployment role)."
  type        = string
}

variable "management_account_id" {
  description = "The organization's management account id."
  type        = string
}

variable "organization_id" {
  description = "The organization id (o-...)."
  type        = string
}

variable "name" {
  description = "Name of the deployment."
  type        = string
  default     = "trailhound"
}

variable "image_tag" {
  description = "Tag of the image pushed to the ECR repository (see outputs.ecr_repository_url)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks (with a NAT gateway or VPC endpoints)."
  type        = list(string)
}

variable "cloudtrail_bucket" {
  description = "The organization trail's bucket."
  type        = string
}

variable "cloudtrail_prefix" {
  description = "Key prefix before AWSLogs/ in the bucket; empty for none."
  type        = string
  default     = ""
}

variable "cloudtrail_kms_key_arn" {
  description = "KMS key of the trail's objects, if SSE-KMS."
  type        = string
  default     = null
}

variable "trail_regions" {
  description = "Regions the trail delivers for."
  type        = list(string)
}

variable "include_ous" {
  description = "Only accounts under these OUs (empty: every active account)."
  type        = list(string)
  default     = []
}

variable "hec_url" {
  description = "Splunk HEC base URL (null: no Splunk sink)."
  type        = string
  default     = null
}

variable "hec_index" {
  description = "Splunk index."
  type        = string
  default     = null
}

variable "failure_topic_arn" {
  description = "SNS topic told when accounts could not be hunted."
  type        = string
  default     = null
}

variable "schedule_enabled" {
  description = "Whether the hourly schedule runs. Keep it false on the first apply, until `learn` has filled the baselines; otherwise the first hunt reports every principal's usual behaviour as new."
  type        = bool
  default     = true
}

variable "single_task_mode" {
  description = "One task hunts every account (small organizations)."
  type        = bool
  default     = false
}

variable "max_concurrency" {
  description = "Accounts hunted at once by the Distributed Map."
  type        = number
  default     = 10
}
