# The state store: baselines, per-account watermarks and the findings outbox of the whole
# organization in one table. The schema is the one src/baseline/dynamodb/table.rs creates in
# the tests: partition key `pk` (S), sort key `sk` (S), on-demand billing, TTL on `expires_at`
# (epoch seconds; src/baseline/dynamodb/keys.rs EXPIRES_AT). No index: the store reads by key.

resource "aws_dynamodb_table" "state" {
  name                        = var.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.dynamodb_deletion_protection
  tags                        = local.tags

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}
