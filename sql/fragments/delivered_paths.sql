-- The objects of one account delivered in one window, as a condition on "$path" itself: per
-- configured region, one half-open range from the name stem of the window's first delivery
-- minute to that of its end, e.g. for us-east-1 and [2026-11-24T23:00Z, 2026-11-25T00:00Z):
--   "$path" >= 's3://BUCKET/[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/us-east-1/2026/11/24/ACCOUNT_CloudTrail_us-east-1_20261124T2300Z'
--   "$path" <  's3://BUCKET/[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/us-east-1/2026/11/25/ACCOUNT_CloudTrail_us-east-1_20261125T0000Z'
-- Keys sort by day folder, then by the fixed-width delivery stamp, so each range holds exactly
-- that region's objects of the window; `..._20261125T0000Z_RAND.json.gz` sorts above the
-- exclusive upper bound and stays out. Comparisons of the column with constants are what
-- Trino's Hive connector (Athena's engine) turns into a domain of "$path" and checks every
-- file against before reading it; a function of "$path" (regexp_extract) it does not.
-- The leading FALSE only starts the disjunction; the planner drops it.
--
-- Parameters (rendered by src/source/athena/sql.rs from validated values only; literals
-- arrive quoted), per configured region:
--   {{path_from}}    the window's first object name stem, in the folder of its first day
--   {{path_until}}   the stem of the window's end minute, in that minute's day folder
    (
      FALSE
{{#path_ranges}}
      OR ("$path" >= {{path_from}} AND "$path" < {{path_until}})
{{/path_ranges}}
    )
