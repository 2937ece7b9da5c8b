output "role_arn" {
  description = "ARN of the role: the trailhound module's management_role_arn."
  value       = aws_iam_role.muster.arn
}
