# Four roles, each with only what its job needs. terraform/PERMISSIONS.md maps every AWS
# operation the trailhound binary calls (found in src/) to the statement below that grants it;
# statement ids (sid) are the names used there.
#
#   task       what trailhound itself calls: the CloudTrail bucket (and its key), Athena in the
#              module's workgroup, Glue on the module's database, the results bucket, the
#              DynamoDB table, the HEC secret, and the management account's role.
#   execution  what ECS needs to start the container: pull the image, write its logs.
#   sfn        what the state machine needs: run the task definition and wait for it, read the
#              account list, write map results, start its own child executions, record metrics.
#   scheduler  start the state machine.

locals {
  results_arn = aws_s3_bucket.results.arn
  trail_arn   = "arn:${local.partition}:s3:::${var.cloudtrail_bucket}"

  workgroup_arn = "arn:${local.partition}:athena:${local.region}:${local.account_id}:workgroup/${aws_athena_workgroup.this.name}"
  glue_arns = [
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${local.glue_database}",
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${local.glue_database}/*",
  ]

  # Services that use the module's key on the task role's behalf: DynamoDB always, Secrets
  # Manager when there is a HEC token to read, S3 when the task writes to the results bucket
  # (Athena's results, the muster list of map mode).
  task_key_services = concat(
    ["dynamodb.${local.region}.${local.dns_suffix}"],
    var.hec_url != null ? ["secretsmanager.${local.region}.${local.dns_suffix}"] : [],
    local.uses_athena || !var.single_task_mode ? ["s3.${local.region}.${local.dns_suffix}"] : [],
  )

  # Glue actions behind the Athena statements trailhound runs (sql/): CREATE DATABASE IF NOT
  # EXISTS, CREATE EXTERNAL TABLE IF NOT EXISTS, ALTER TABLE SET TBLPROPERTIES, SELECT; and in
  # managed mode ALTER TABLE ADD IF NOT EXISTS PARTITION.
  glue_actions = concat(
    [
      "glue:GetDatabase",
      "glue:CreateDatabase",
      "glue:GetTable",
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:GetPartitions",
    ],
    var.athena_partitions == "managed" ? [
      "glue:GetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
    ] : [],
  )
}

# ---------------------------------------------------------------------------------------------
# The task role: what the trailhound binary calls.

data "aws_iam_policy_document" "task_trust" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "trailhound task: reads CloudTrail, queries Athena, keeps state in DynamoDB, reads the HEC secret"
  assume_role_policy = data.aws_iam_policy_document.task_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task" {
  # S3 source: ListObjectsV2 of the account, region and day folders; Athena: listing the
  # table's partition folders. Only below [PREFIX/]AWSLogs/.
  statement {
    sid       = "ListTrailPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.trail_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.trail_key_prefix}*"]
    }
  }

  # S3 source: GetObject of each log object of a window; Athena reads them as the caller too.
  statement {
    sid       = "ReadTrailObjects"
    actions   = ["s3:GetObject"]
    resources = ["${local.trail_arn}/${local.trail_key_prefix}*"]
  }

  # Athena asks where the table's bucket is.
  dynamic "statement" {
    for_each = local.uses_athena ? [1] : []
    content {
      sid       = "LocateTrailBucket"
      actions   = ["s3:GetBucketLocation"]
      resources = [local.trail_arn]
    }
  }

  # Objects the trail encrypted with SSE-KMS.
  dynamic "statement" {
    for_each = var.cloudtrail_kms_key_arn == null ? [] : [1]
    content {
      sid       = "DecryptTrailObjects"
      actions   = ["kms:Decrypt"]
      resources = [var.cloudtrail_kms_key_arn]
    }
  }

  # src/source/athena/query.rs: StartQueryExecution, GetQueryExecution, GetQueryResults,
  # StopQueryExecution, in the module's workgroup only.
  dynamic "statement" {
    for_each = local.uses_athena ? [1] : []
    content {
      sid = "QueryInWorkgroup"
      actions = [
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
      ]
      resources = [local.workgroup_arn]
    }
  }

  # What Athena does in the Glue catalog for trailhound's statements, on the module's
  # database and its tables only.
  dynamic "statement" {
    for_each = local.uses_athena ? [1] : []
    content {
      sid       = "GlueDatabaseAndTables"
      actions   = local.glue_actions
      resources = local.glue_arns
    }
  }

  # Athena writes query results (as the caller) under athena/ of the results bucket, and
  # trailhound's GetQueryResults reads them back through Athena.
  dynamic "statement" {
    for_each = local.uses_athena ? [1] : []
    content {
      sid = "AthenaResultObjects"
      actions = [
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
      ]
      resources = ["${local.results_arn}/${local.athena_results_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = local.uses_athena ? [1] : []
    content {
      sid = "AthenaResultBucket"
      actions = [
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
      ]
      resources = [local.results_arn]
    }
  }

  # src/muster/list.rs: `trailhound muster --out s3://...` writes the account list the
  # Distributed Map reads (PutObject), under the state machine's accounts prefix only.
  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid       = "WriteAccountList"
      actions   = ["s3:PutObject"]
      resources = ["${local.results_arn}/${local.accounts_prefix}*"]
    }
  }

  # src/baseline/dynamodb/calls.rs and outbox.rs: the store's calls, on its table only.
  statement {
    sid = "StateTable"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
    ]
    resources = [aws_dynamodb_table.state.arn]
  }

  # src/alert/hec/token.rs: GetSecretValue of the HEC token, this secret only, when the config
  # has a HEC sink.
  dynamic "statement" {
    for_each = var.hec_url == null ? [] : [1]
    content {
      sid       = "ReadHecSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.hec_token.arn]
    }
  }

  # The module's key, only as DynamoDB, Secrets Manager and S3 use it for the calls above.
  statement {
    sid = "UseModuleKeyThroughServices"
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:DescribeKey",
    ]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.task_key_services
    }
  }

  # src/muster/accounts/organizations.rs: the Organizations calls go through this role (with
  # accounts_from = "static" nothing lists the organization).
  dynamic "statement" {
    for_each = var.accounts_from == "organizations" && var.management_role_arn != null ? [1] : []
    content {
      sid       = "AssumeManagementRole"
      actions   = ["sts:AssumeRole"]
      resources = [var.management_role_arn]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "trailhound"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------------------------------------
# The execution role: ECS pulls the image and sends the container's output to CloudWatch.

# ECS assumes the execution role before the task exists, so it is trusted without the task
# role's source conditions.
data "aws_iam_policy_document" "execution_trust" {
  statement {
    sid     = "EcsTasks"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.${local.dns_suffix}"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ECS execution role of trailhound: pull the image, write logs"
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "PullImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  # GetAuthorizationToken has no resource to scope to.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "WriteTaskLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.tasks.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "trailhound-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---------------------------------------------------------------------------------------------
# The state machine's role.

data "aws_iam_policy_document" "sfn_trust" {
  statement {
    sid     = "StepFunctionsOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "sfn" {
  name_prefix        = "${var.name}-sfn-"
  description        = "trailhound state machine: run the task definition, fan out over accounts, record failures"
  assume_role_policy = data.aws_iam_policy_document.sfn_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "sfn" {
  # ecs:runTask.sync: start the task definition (any revision of the family) on the cluster ...
  statement {
    sid       = "RunTrailhoundTask"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${aws_ecs_task_definition.this.family}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  # ... follow it and stop it on timeout or abort ...
  statement {
    sid = "FollowTrailhoundTasks"
    actions = [
      "ecs:DescribeTasks",
      "ecs:StopTask",
    ]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.cluster_name}/*"]
  }

  # ... through the EventBridge rule Step Functions manages for .sync ECS tasks ...
  statement {
    sid = "SyncEcsEvents"
    actions = [
      "events:PutTargets",
      "events:PutRule",
      "events:DescribeRule",
    ]
    resources = ["arn:${local.partition}:events:${local.region}:${local.account_id}:rule/StepFunctionsGetEventsForECSTaskRule"]
  }

  # ... and hand the task its two roles.
  statement {
    sid     = "PassTaskRoles"
    actions = ["iam:PassRole"]
    resources = [
      aws_iam_role.task.arn,
      aws_iam_role.execution.arn,
    ]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.${local.dns_suffix}"]
    }
  }

  # Distributed Map: the ItemReader reads the account list ...
  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid       = "ReadAccountList"
      actions   = ["s3:GetObject"]
      resources = ["${local.results_arn}/${local.accounts_prefix}*"]
    }
  }

  # ... the ResultWriter writes the per-account results ...
  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid = "WriteMapResults"
      actions = [
        "s3:PutObject",
        "s3:GetObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
      ]
      resources = ["${local.results_arn}/${local.map_results_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid = "UseModuleKeyThroughS3"
      actions = [
        "kms:Decrypt",
        "kms:GenerateDataKey",
      ]
      resources = [aws_kms_key.this.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.${local.dns_suffix}"]
      }
    }
  }

  # ... and the map runs each account as a child execution of this state machine, whose
  # counts the last states read.
  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid       = "StartChildExecutions"
      actions   = ["states:StartExecution"]
      resources = [local.state_machine_arn]
    }
  }

  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid = "FollowChildExecutions"
      actions = [
        "states:DescribeExecution",
        "states:StopExecution",
      ]
      resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.state_machine_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.single_task_mode ? [] : [1]
    content {
      sid       = "CountMapResults"
      actions   = ["states:DescribeMapRun"]
      resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:mapRun:${local.state_machine_name}/*"]
    }
  }

  # Failure metrics, in the module's namespace only (PutMetricData has no resource).
  statement {
    sid       = "RecordMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }

  dynamic "statement" {
    for_each = var.failure_topic_arn == null ? [] : [1]
    content {
      sid       = "NotifyFailures"
      actions   = ["sns:Publish"]
      resources = [var.failure_topic_arn]
    }
  }

  # Execution logging and X-Ray tracing: these actions have no resource to scope to.
  statement {
    sid = "ExecutionLogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    sid = "Tracing"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "sfn" {
  name   = "trailhound-state-machine"
  role   = aws_iam_role.sfn.id
  policy = data.aws_iam_policy_document.sfn.json
}

# ---------------------------------------------------------------------------------------------
# The scheduler's role: start this state machine, nothing else.

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    sid     = "SchedulerOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name_prefix        = "${var.name}-sched-"
  description        = "EventBridge Scheduler: start the trailhound state machine"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartHunt"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.this.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "trailhound-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
