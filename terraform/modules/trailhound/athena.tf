# The Athena workgroup every trailhound query runs in, and the Glue database that holds the
# CloudTrail table. The table itself is created by `trailhound tables` (sql/create_table_*.sql),
# so that its columns and partition settings always match the binary that queries it.

resource "aws_athena_workgroup" "this" {
  name          = var.name
  description   = "trailhound hunts over CloudTrail"
  force_destroy = var.force_destroy
  tags          = local.tags

  configuration {
    # Queries cannot choose their own result location or encryption.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff_per_query
    requester_pays_enabled             = false

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.results.id}/${local.athena_results_prefix}"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = local.glue_database
  description = "CloudTrail logs hunted by trailhound"
  tags        = local.tags
}
