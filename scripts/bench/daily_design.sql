-- The public daily-partition design, as the cost model runs it: a CloudTrail table partitioned
-- by delivery day, queried every hour on the hour for "today" (the partition of the query's own
-- UTC date, as the scheduler's clock gives it) with an eventTime filter for the last hour.
-- Its partition columns are named as trailhound's, so that one catalog of objects serves both
-- designs, and it is run per account, as trailhound runs. scripts/bench/cost.py fills the
-- {placeholders} (Python's str.format) and reads the predicates of the WHERE clause.
SELECT useridentity.arn, eventsource, eventname, count(*) AS calls
FROM cloudtrail_daily
WHERE account = '{account}'
  AND delivery_date = '{today}'
  AND from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp('{since}')
GROUP BY useridentity.arn, eventsource, eventname
