# trailhound on AWS: EventBridge Scheduler starts a Step Functions state machine every hour;
# it runs the trailhound container on ECS Fargate, either once per account (a Distributed Map
# over the accounts `trailhound muster` lists) or once for the whole organization
# (`single_task_mode`). The hunt reads CloudTrail through Athena or straight from the trail
# bucket, keeps its baselines in DynamoDB and sends findings to Splunk HEC.
#
# One file per concern: kms.tf, storage.tf, athena.tf, dynamodb.tf, secrets.tf, ecs.tf,
# config.tf, step_functions.tf, scheduler.tf, iam.tf. This file holds what they share.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix

  # Every name the module gives is derived from var.name, so the IAM policies can name
  # resources that do not exist yet (the state machine's role must name the state machine).
  state_machine_name = var.name
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  cluster_name       = var.name
  container_name     = "trailhound"

  # Glue database names are lower case with underscores.
  glue_database = var.athena_database

  # Key prefixes inside the results bucket.
  athena_results_prefix = "athena/"
  accounts_prefix       = "stepfunctions/accounts/"
  map_results_prefix    = "stepfunctions/map-results/"

  # CloudTrail's objects: s3://BUCKET/[PREFIX/]AWSLogs/...
  trail_key_prefix = var.cloudtrail_prefix == "" ? "AWSLogs/" : "${var.cloudtrail_prefix}/AWSLogs/"

  uses_athena = var.source_kind == "athena"

  tags = merge({ "app" = "trailhound" }, var.tags)
}
