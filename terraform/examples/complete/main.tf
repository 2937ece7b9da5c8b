# A complete deployment: trailhound in the security (or audit) account, hunting every account
# of the organization every hour, and the read-only muster role in the management account.
# README.md, "Deploy on AWS", walks through it:
#
#   cp terraform.tfvars.example terraform.tfvars   # fill it in; schedule_enabled = false
#   terraform init && terraform apply -target=module.trailhound.aws_ecr_repository.this
#   docker build -t "$(terraform output -raw ecr_repository_url):$TAG" ../../.. && docker push ...
#   terraform apply
#   aws secretsmanager put-secret-value --secret-id "$(terraform output -raw hec_secret_arn)" --secret-string "$HEC_TOKEN"
#   # once: the Athena table, and 14 days of baseline before the first hunt
#   eval "$(terraform output -raw run_task_command | sed 's/COMMAND_JSON/["tables"]/')"
#   eval "$(terraform output -raw run_task_command | sed 's/COMMAND_JSON/["learn","--days","14"]/')"
#   # then schedule_enabled = true and terraform apply

provider "aws" {
  region = var.region
}

provider "aws" {
  alias  = "management"
  region = var.region

  assume_role {
    role_arn = var.management_account_role_arn
  }
}

locals {
  muster_role_name = "${var.name}-muster"
  # Known before either module is applied, so that neither waits for the other's output to
  # name it: the task role's policy names this role, and this role trusts the task role.
  muster_role_arn = "arn:aws:iam::${var.management_account_id}:role/${local.muster_role_name}"

  tags = {
    "owner" = "security"
  }
}

module "trailhound" {
  source = "../../modules/trailhound"

  name      = var.name
  image_tag = var.image_tag
  tags      = local.tags

  vpc_id           = var.vpc_id
  subnet_ids       = var.subnet_ids
  egress_tcp_ports = var.hec_url == null ? [443] : [443, 8088]

  cloudtrail_bucket      = var.cloudtrail_bucket
  cloudtrail_prefix      = var.cloudtrail_prefix
  cloudtrail_kms_key_arn = var.cloudtrail_kms_key_arn
  cloudtrail_org_id      = var.organization_id
  trail_regions          = var.trail_regions
  source_kind            = "athena"

  accounts_from       = "organizations"
  management_role_arn = local.muster_role_arn
  include_ous         = var.include_ous

  schedule_enabled  = var.schedule_enabled
  single_task_mode  = var.single_task_mode
  max_concurrency   = var.max_concurrency
  failure_topic_arn = var.failure_topic_arn

  hec_url   = var.hec_url
  hec_index = var.hec_index

  # Everything else of the config file (see trailhound.example.toml).
  config_extra_toml = <<-TOML
    [hunt]
    lookback = "1d"

    [ignore]
    user_agents = ["*Datadog*"]
  TOML
}

module "management_account_role" {
  source = "../../modules/management-account-role"

  providers = {
    aws = aws.management
  }

  role_name         = local.muster_role_name
  trusted_role_arns = [module.trailhound.task_role_arn]
  organization_id   = var.organization_id
  tags              = local.tags
}
