# The trailhound config file the tasks run with. The module writes the tables that name its
# own resources ([muster], [source], [trail], [athena], [store], [[sinks.hec]]), so the config
# and the infrastructure cannot drift apart; config_extra_toml adds everything else.
#
# How it reaches the binary: the task definition passes the text in the environment variable
# TRAILHOUND_CONFIG_TOML, and the container's entry script (templates/entrypoint.sh) writes it
# to /tmp/trailhound.toml and runs `trailhound --config /tmp/trailhound.toml ...`. The config
# holds no secret (the HEC token is read from Secrets Manager at run time), and a change is a
# new task definition revision, visible in the plan.

locals {
  config_toml = templatefile("${path.module}/templates/trailhound.toml.tftpl", {
    extra                   = var.config_extra_toml
    accounts_from           = var.accounts_from
    accounts                = var.accounts
    exclude_accounts        = var.exclude_accounts
    include_ous             = var.include_ous
    exclude_ous             = var.exclude_ous
    include_tags            = var.include_tags
    exclude_tags            = var.exclude_tags
    management_role_arn     = var.management_role_arn
    concurrency             = var.hunt_concurrency
    source_kind             = var.source_kind
    trail_bucket            = var.cloudtrail_bucket
    trail_prefix            = var.cloudtrail_prefix
    trail_org_id            = var.cloudtrail_org_id
    trail_regions           = var.trail_regions
    athena_workgroup        = aws_athena_workgroup.this.name
    athena_database         = aws_glue_catalog_database.this.name
    athena_table            = var.athena_table
    athena_partitions       = var.athena_partitions
    athena_projection_start = var.athena_projection_start
    athena_query_timeout    = var.athena_query_timeout
    store_table             = aws_dynamodb_table.state.name
    hec_url                 = var.hec_url
    hec_secret_arn          = aws_secretsmanager_secret.hec_token.arn
    hec_token_secret_key    = var.hec_token_secret_key
    hec_index               = var.hec_index
    hec_ca_bundle           = var.hec_ca_bundle
    hec_acks                = var.hec_acks
  })
}
