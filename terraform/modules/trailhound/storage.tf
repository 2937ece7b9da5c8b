# The results bucket: Athena query results (athena/), the account list each execution's muster
# task writes (stepfunctions/accounts/) and the Distributed Map's result manifests
# (stepfunctions/map-results/). Everything in it is transient and expires.

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_144:Query results and account lists are transient (they expire after results_expiration_days) and can be recomputed; replicating them to another region protects nothing.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new objects in this bucket; Step Functions reads the account list by key.
  #checkov:skip=CKV_AWS_18:Server access logging is enabled when results_bucket_access_log_bucket is set (aws_s3_bucket_logging.results); an organization sends such logs to its own log archive bucket, which this module cannot create.
  bucket_prefix = "${var.name}-results-"
  force_destroy = var.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "expire-everything"
    status = "Enabled"

    filter {}

    expiration {
      days = var.results_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Expiration needs versioning's state to be known first.
  depends_on = [aws_s3_bucket_versioning.results]
}

resource "aws_s3_bucket_logging" "results" {
  count = var.results_bucket_access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.results.id
  target_bucket = var.results_bucket_access_log_bucket
  target_prefix = "s3/${aws_s3_bucket.results.id}/"
}

resource "aws_s3_bucket_policy" "results" {
  bucket = aws_s3_bucket.results.id
  policy = data.aws_iam_policy_document.results_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.results]
}

data "aws_iam_policy_document" "results_bucket" {
  statement {
    sid     = "DenyPlainHttp"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.results.arn,
      "${aws_s3_bucket.results.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
