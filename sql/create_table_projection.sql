-- The CloudTrail table with partition projection (`athena.partitions = "projection"`).
-- Partitions are the folders CloudTrail writes: account, region and the *delivery* day
-- (`AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`). `IF NOT EXISTS` makes it safe
-- to run again; update_table_projection.sql brings the projection rules of an existing table
-- up to date with the config.
--
-- Parameters (rendered by src/source/athena/sql.rs from validated values only; literals
-- arrive quoted):
--   {{table}}             `database`.`table` from `athena.database` and `athena.table`
--   {{location}}          s3://BUCKET/[PREFIX/]AWSLogs/[o-ORG/]
--   the projection fragment's parameters (see fragments/projection_properties.sql)
CREATE EXTERNAL TABLE IF NOT EXISTS {{table}} (
{{> cloudtrail_columns}}
)
COMMENT 'CloudTrail logs hunted by trailhound (partition projection)'
PARTITIONED BY (account STRING, region STRING, delivery_date STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION {{location}}
TBLPROPERTIES (
  'classification' = 'cloudtrail',
{{> projection_properties}}
)
