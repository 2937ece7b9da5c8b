variable "role_name" {
  description = "Name of the role trailhound assumes in this (the management or a delegated administrator) account. The trailhound module's management_role_arn is arn:aws:iam::<this account>:role/<role_name>."
  type        = string
  default     = "trailhound-muster"
}

variable "trusted_role_arns" {
  description = "Roles allowed to assume this role: the trailhound module's task_role_arn output."
  type        = list(string)

  validation {
    condition     = length(var.trusted_role_arns) > 0
    error_message = "trusted_role_arns must name the trailhound task role."
  }
}

variable "organization_id" {
  description = "The organization's id (o-...): the OU and account ARNs the role may list are scoped to it."
  type        = string

  validation {
    condition     = can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must look like o-a1b2c3d4e5."
  }
}

variable "management_account_id" {
  description = "The organization's management account id, which Organizations puts in its ARNs. null: the account this module is deployed in (deploy it in the management account; set this when deploying in a delegated administrator account)."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Longest session, in seconds, of the assumed role (a muster takes seconds)."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags of the role."
  type        = map(string)
  default     = {}
}
