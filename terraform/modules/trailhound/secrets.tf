# The Splunk HEC token. Terraform creates the secret but never its value, so the token is in
# no plan, state file or repository. Set it once after apply:
#
#   aws secretsmanager put-secret-value --secret-id <outputs.hec_secret_arn> --secret-string "$TOKEN"
#
# (or a JSON object with the token under hec_token_secret_key).

resource "aws_secretsmanager_secret" "hec_token" {
  #checkov:skip=CKV2_AWS_57:A HEC token is issued by Splunk, not by AWS; rotating it needs a rotation function that talks to Splunk's API, which this module does not ship. Rotate it in Splunk and put the new value.
  name_prefix             = "${var.name}/hec-token-"
  description             = "Splunk HEC token for trailhound (value set outside Terraform)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}
