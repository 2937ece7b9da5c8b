output "state_machine_arn" {
  description = "The state machine the schedule starts; start it by hand with `aws stepfunctions start-execution --state-machine-arn <this>`."
  value       = aws_sfn_state_machine.this.arn
}

output "schedule_arn" {
  description = "The EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.hunt.arn
}

output "ecr_repository_url" {
  description = "Push the trailhound image here (`docker push <this>:<tag>`) and set image_tag to the tag."
  value       = aws_ecr_repository.this.repository_url
}

output "image" {
  description = "The image the task definition runs."
  value       = local.image
}

output "cluster_arn" {
  description = "The ECS cluster the tasks run on."
  value       = aws_ecs_cluster.this.arn
}

output "task_definition_arn" {
  description = "The Fargate task definition (latest revision)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_role_arn" {
  description = "The role trailhound runs as. Trust it in the management-account-role module, and, when the CloudTrail bucket or its KMS key is in another account, allow it in their policies (s3:ListBucket, s3:GetObject, s3:GetBucketLocation, kms:Decrypt)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "The ECS execution role (image pull, logs)."
  value       = aws_iam_role.execution.arn
}

output "state_machine_role_arn" {
  description = "The state machine's role."
  value       = aws_iam_role.sfn.arn
}

output "scheduler_role_arn" {
  description = "The schedule's role."
  value       = aws_iam_role.scheduler.arn
}

output "results_bucket" {
  description = "Bucket of Athena results and Step Functions account lists and map results."
  value       = aws_s3_bucket.results.id
}

output "athena_workgroup" {
  description = "The Athena workgroup trailhound queries in."
  value       = aws_athena_workgroup.this.name
}

output "glue_database" {
  description = "The Glue database of the CloudTrail table."
  value       = aws_glue_catalog_database.this.name
}

output "dynamodb_table" {
  description = "The DynamoDB table of baselines, watermarks and the findings outbox."
  value       = aws_dynamodb_table.state.name
}

output "hec_secret_arn" {
  description = "The Secrets Manager secret for the Splunk HEC token. Set its value outside Terraform: `aws secretsmanager put-secret-value --secret-id <this> --secret-string \"$TOKEN\"`."
  value       = aws_secretsmanager_secret.hec_token.arn
}

output "kms_key_arn" {
  description = "The module's KMS key (results bucket, table, secret, ECR, logs)."
  value       = aws_kms_key.this.arn
}

output "task_log_group" {
  description = "CloudWatch log group of the tasks: JSON logs on stderr, findings as JSON lines on stdout."
  value       = aws_cloudwatch_log_group.tasks.name
}

output "security_group_ids" {
  description = "Security groups of the tasks."
  value       = local.security_group_ids
}

output "config_toml" {
  description = "The trailhound config the tasks run with (TRAILHOUND_CONFIG_TOML). Holds no secret."
  value       = local.config_toml
}

output "run_task_command" {
  description = "An `aws ecs run-task` command for one-off trailhound commands in the deployment, with COMMAND_JSON to replace by the command as a JSON array: [\"tables\"] once after the first apply with the Athena source, [\"learn\",\"--days\",\"14\"] to fill the baselines before the first hunt."
  value = join(" ", [
    "aws ecs run-task",
    "--cluster ${aws_ecs_cluster.this.name}",
    "--task-definition ${aws_ecs_task_definition.this.family}",
    "--launch-type FARGATE",
    "--network-configuration '${jsonencode({ awsvpcConfiguration = { subnets = var.subnet_ids, securityGroups = local.security_group_ids, assignPublicIp = var.assign_public_ip ? "ENABLED" : "DISABLED" } })}'",
    "--overrides '{\"containerOverrides\":[{\"name\":\"${local.container_name}\",\"command\":COMMAND_JSON}]}'",
  ])
}
