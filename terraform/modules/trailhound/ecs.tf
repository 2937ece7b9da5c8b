# The container: its ECR repository, the ECS cluster, the log group and the Fargate task
# definition every state of the state machine runs (with its own command), and the security
# group of the tasks.

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy
  tags                 = local.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 30 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  name = local.cluster_name
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

locals {
  image = coalesce(var.container_image, "${aws_ecr_repository.this.repository_url}:${coalesce(var.image_tag, "unset")}")

  # The entry script turns TRAILHOUND_CONFIG_TOML into a file and runs trailhound with it;
  # see templates/entrypoint.sh. The image's own ENTRYPOINT is the bare binary.
  entrypoint = ["/bin/sh", "-c", file("${path.module}/templates/entrypoint.sh"), "trailhound"]

  container_definitions = [{
    name       = local.container_name
    image      = local.image
    essential  = true
    entryPoint = local.entrypoint
    # The default command; the state machine overrides it per state.
    command                = ["hunt"]
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    privileged             = false
    environment = [
      { name = "TRAILHOUND_CONFIG_TOML", value = local.config_toml },
      { name = "AWS_REGION", value = local.region },
      { name = "RUST_LOG", value = var.log_level },
      { name = "TMPDIR", value = "/tmp" },
    ]
    # The only writable place: the config file the entry script writes.
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.tasks.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "trailhound"
      }
    }
  }]
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions    = jsonencode(local.container_definitions)
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Fargate's task storage, writable although the root file system is read-only.
  volume {
    name = "tmp"
  }

  lifecycle {
    precondition {
      condition     = var.container_image != null || var.image_tag != null
      error_message = "Set image_tag (a tag pushed to the module's ECR repository) or container_image."
    }
    precondition {
      condition     = var.source_kind != "athena" || length(var.trail_regions) > 0
      error_message = "The Athena source needs trail_regions: the regions the trail delivers for."
    }
    precondition {
      condition     = var.accounts_from != "static" || length(var.accounts) > 0
      error_message = "accounts_from = \"static\" needs the accounts in var.accounts."
    }
    # The task role grants no Organizations action itself: the calls go through the role of the
    # management-account-role module (deployed in the management account, or in a delegated
    # administrator account, which may be this one).
    precondition {
      condition     = var.accounts_from != "organizations" || var.management_role_arn != null
      error_message = "accounts_from = \"organizations\" needs management_role_arn: the role of the management-account-role module, which the tasks assume to list the accounts."
    }
  }
}

resource "aws_security_group" "tasks" {
  #checkov:skip=CKV2_AWS_5:The group is attached to the Fargate tasks when they start: the state machine's RunTask NetworkConfiguration (and outputs.run_task_command) name it. Tasks are not Terraform resources, so checkov cannot see the attachment.
  count = length(var.security_group_ids) == 0 ? 1 : 0

  name_prefix = "${var.name}-tasks-"
  description = "trailhound tasks: no inbound; outbound TCP to AWS APIs and the Splunk HEC"
  vpc_id      = var.vpc_id
  tags        = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  for_each = length(var.security_group_ids) == 0 ? {
    for pair in setproduct(var.egress_tcp_ports, var.egress_cidr_blocks) : "${pair[0]}-${pair[1]}" => {
      port = pair[0]
      cidr = pair[1]
    }
  } : {}

  security_group_id = aws_security_group.tasks[0].id
  description       = "Outbound TCP ${each.value.port} to ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
  tags              = local.tags
}

locals {
  security_group_ids = length(var.security_group_ids) > 0 ? var.security_group_ids : [aws_security_group.tasks[0].id]

  # The network settings of every RunTask, in the state machine's PascalCase.
  network_configuration = {
    AwsvpcConfiguration = {
      Subnets        = var.subnet_ids
      SecurityGroups = local.security_group_ids
      AssignPublicIp = var.assign_public_ip ? "ENABLED" : "DISABLED"
    }
  }
}
