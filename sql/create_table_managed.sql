-- The CloudTrail table with partitions the hunt adds itself (`athena.partitions = "managed"`):
-- before each activity query the hunt runs add_partitions.sql for exactly the days and
-- regions of its window. Same columns and partitions as the projection table, so a table can
-- switch modes (update_table_managed.sql turns projection off).
--
-- Parameters (rendered by src/source/athena/sql.rs from validated values only; literals
-- arrive quoted):
--   {{table}}     `database`.`table` from `athena.database` and `athena.table`
--   {{location}}  s3://BUCKET/[PREFIX/]AWSLogs/[o-ORG/]
CREATE EXTERNAL TABLE IF NOT EXISTS {{table}} (
{{> cloudtrail_columns}}
)
COMMENT 'CloudTrail logs hunted by trailhound (managed partitions)'
PARTITIONED BY (account STRING, region STRING, delivery_date STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION {{location}}
TBLPROPERTIES (
  'classification' = 'cloudtrail'
)
