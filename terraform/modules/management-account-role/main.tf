# The role in the management account (or a delegated administrator account) that trailhound's
# task role assumes to list the organization's accounts: src/muster/accounts/organizations.rs
# calls ListAccounts always, ListAccountsForParent and ListOrganizationalUnitsForParent when
# [muster] include_ous/exclude_ous are set, and ListTagsForResource when include_tags/
# exclude_tags are set. Read-only, and nothing else.
#
# Deploy it with a provider for the management account; see terraform/examples/complete.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  # Organizations ARNs carry the management account's id, wherever this role lives.
  org_arn = "arn:${local.partition}:organizations::${coalesce(var.management_account_id, local.account_id)}"
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "TrailhoundTaskRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = var.trusted_role_arns
    }
  }
}

resource "aws_iam_role" "muster" {
  name                 = var.role_name
  description          = "trailhound muster: list the organization's accounts, OUs and account tags (read-only)"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags
}

data "aws_iam_policy_document" "muster" {
  # ListAccounts has no resource to scope to.
  statement {
    sid       = "ListAccounts"
    actions   = ["organizations:ListAccounts"]
    resources = ["*"]
  }

  # Walking down from the OUs of include_ous/exclude_ous: the root and the OUs of this
  # organization only.
  statement {
    sid = "WalkOrganizationalUnits"
    actions = [
      "organizations:ListAccountsForParent",
      "organizations:ListOrganizationalUnitsForParent",
    ]
    resources = [
      "${local.org_arn}:root/${var.organization_id}/r-*",
      "${local.org_arn}:ou/${var.organization_id}/ou-*",
    ]
  }

  # Tags of the accounts of this organization (include_tags/exclude_tags).
  statement {
    sid       = "ReadAccountTags"
    actions   = ["organizations:ListTagsForResource"]
    resources = ["${local.org_arn}:account/${var.organization_id}/*"]
  }
}

resource "aws_iam_role_policy" "muster" {
  name   = "trailhound-muster"
  role   = aws_iam_role.muster.id
  policy = data.aws_iam_policy_document.muster.json
}
