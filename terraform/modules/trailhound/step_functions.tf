# The state machine the schedule starts. Its definition is Amazon States Language, rendered
# from one of two templates:
#
#   templates/state_machine_map.asl.json.tftpl     (default) Muster -> HuntAccounts, a
#       Distributed Map over the account list in S3 that runs `trailhound account --id` per
#       account (MaxConcurrency = max_concurrency), each with Retry and Catch -> CountAccounts
#       -> RecordAccountCounts (CloudWatch metrics) -> fail the execution if any account failed
#       (and publish to failure_topic_arn when set).
#   templates/state_machine_single.asl.json.tftpl  (single_task_mode) one task runs
#       `trailhound hunt` over every account -> RecordRunSuccess/RecordRunFailure.

locals {
  # RunTask settings shared by every ECS state, in the ASL's PascalCase.
  run_task = {
    Cluster              = aws_ecs_cluster.this.arn
    TaskDefinition       = aws_ecs_task_definition.this.arn
    LaunchType           = "FARGATE"
    PlatformVersion      = "LATEST"
    NetworkConfiguration = local.network_configuration
  }

  # An ECS task that failed (could not start, stopped, exited non-zero) is started again; the
  # hunt is idempotent per window.
  task_retry = [{
    ErrorEquals     = ["States.TaskFailed"]
    IntervalSeconds = 60
    MaxAttempts     = var.task_retry_attempts
    BackoffRate     = 2
    JitterStrategy  = "FULL"
  }]

  # Throttling and transient errors of the metric, SNS and DescribeMapRun calls.
  api_retry = [{
    ErrorEquals     = ["States.ALL"]
    IntervalSeconds = 5
    MaxAttempts     = 3
    BackoffRate     = 2
  }]

  state_machine_template = var.single_task_mode ? "state_machine_single.asl.json.tftpl" : "state_machine_map.asl.json.tftpl"

  state_machine_definition = templatefile("${path.module}/templates/${local.state_machine_template}", {
    partition          = local.partition
    run_task           = local.run_task
    container_name     = local.container_name
    bucket             = aws_s3_bucket.results.id
    accounts_prefix    = local.accounts_prefix
    map_results_prefix = local.map_results_prefix
    max_concurrency    = var.max_concurrency
    timeout_seconds    = var.task_timeout_seconds
    task_retry         = local.task_retry
    api_retry          = local.api_retry
    metric_namespace   = var.metric_namespace
    metric_dimensions  = [{ Name = "StateMachine", Value = local.state_machine_name }]
    log_group          = aws_cloudwatch_log_group.tasks.name
    notify             = var.failure_topic_arn != null
    topic_arn          = var.failure_topic_arn == null ? "" : var.failure_topic_arn
  })
}

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sfn_state_machine" "this" {
  name       = local.state_machine_name
  type       = "STANDARD"
  role_arn   = aws_iam_role.sfn.arn
  definition = local.state_machine_definition
  tags       = local.tags

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = true
  }

  # The role's policy must exist before the definition is validated against it.
  depends_on = [aws_iam_role_policy.sfn]
}
