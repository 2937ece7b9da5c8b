-- The records of one account and delivery-time window that some enabled rule's `when` may hold
-- for, one row each, as a JSON object shaped like the CloudTrail record (camelCase keys, nested
-- objects where the record nests, requestParameters and the other JSON-text columns parsed).
-- Athena filters; Rust aggregates: the rows are fed to the same RuleEngine the direct scan
-- feeds, which tests `when` again on every record, groups, counts and windows.
-- tests/athena_rules_sql.rs runs this very text on DuckDB and compares the rule hits with those
-- of every record of the same objects.
--
-- Parameters (rendered by src/source/athena/rules_sql.rs; values arrive quoted, the two SQL
-- expressions are compiled from checked rules, every literal in them quoted by one function):
--   {{table}}            "database"."table"
--   {{account}}          the 12-digit account id (injected projection needs this equality)
--   {{days}}             every delivery day the window touches, 'YYYY/MM/DD', ...
--   {{delivered_from}}   window start, 'YYYYMMDDTHHmmZ' (rounded up to the minute)
--   {{delivered_until}}  window end, same form; the window is half-open
--   {{delivered_paths}}  the window as ranges of "$path", one per configured region:
--                        fragments/delivered_paths.sql, rendered by the template engine
--   {{record}}           the JSON text of one record: json_object over the columns rules read,
--                        nested objects passed as json_query(..., 'lax $') so they nest
--   {{condition}}        the union of the enabled rules' `when`, in three-valued logic: NULL
--                        where SQL cannot decide (a JSON array inside an array on a rule's
--                        path), so such records are returned and the engine decides
SELECT
  {{record}} AS record
FROM {{table}}
WHERE account = {{account}}
  AND delivery_date IN ({{days}})
  -- The same objects as the activity query (sql/activity.sql): by the delivery minute in the
  -- object's name, tested twice as there. The regexp is the filter the rows depend on; the
  -- ranges of "$path" itself are what lets Athena skip the day's other objects unread.
  AND regexp_extract("$path", '_CloudTrail_[a-z0-9-]+_([0-9]{8}T[0-9]{4}Z)_[^/]*$', 1) >= {{delivered_from}}
  AND regexp_extract("$path", '_CloudTrail_[a-z0-9-]+_([0-9]{8}T[0-9]{4}Z)_[^/]*$', 1) < {{delivered_until}}
  AND {{delivered_paths}}
  AND coalesce({{condition}}, TRUE)
