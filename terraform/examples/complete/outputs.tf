output "state_machine_arn" {
  description = "Start a hunt by hand: aws stepfunctions start-execution --state-machine-arn <this>."
  value       = module.trailhound.state_machine_arn
}

output "ecr_repository_url" {
  description = "Where to push the trailhound image."
  value       = module.trailhound.ecr_repository_url
}

output "hec_secret_arn" {
  description = "Put the Splunk HEC token here (outside Terraform)."
  value       = module.trailhound.hec_secret_arn
}

output "task_role_arn" {
  description = "Allow this role in the CloudTrail bucket's policy (and its KMS key's) when they live in the log archive account."
  value       = module.trailhound.task_role_arn
}

output "muster_role_arn" {
  description = "The role in the management account the tasks assume to list accounts."
  value       = module.management_account_role.role_arn
}

output "task_log_group" {
  description = "CloudWatch log group of the tasks."
  value       = module.trailhound.task_log_group
}

output "run_task_command" {
  description = "aws ecs run-task for one-off commands; replace COMMAND_JSON."
  value       = module.trailhound.run_task_command
}

output "config_toml" {
  description = "The config the tasks run with."
  value       = module.trailhound.config_toml
}
