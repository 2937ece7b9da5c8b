-- Adds the partitions one activity query needs, in managed mode only: every region of
-- `trail.regions` for every delivery day the window touches, for one account. `IF NOT EXISTS`
-- makes a repeat (the next hour, a re-run) a no-op.
--
-- Parameters (rendered by src/source/athena/sql.rs from validated values only; literals
-- arrive quoted):
--   {{table}}                           `database`.`table`
--   per partition: {{account}} (12 digits), {{region}}, {{day}} ('YYYY/MM/DD') and
--   {{location}} s3://BUCKET/[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
ALTER TABLE {{table}} ADD IF NOT EXISTS
{{#partitions}}
  PARTITION (account = {{account}}, region = {{region}}, delivery_date = {{day}})
  LOCATION {{location}}
{{/partitions}}
