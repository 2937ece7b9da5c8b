-- The activity of one account in one delivery-time window: one row per distinct identity,
-- eventsource, eventname and outcome class, with counts, first and last eventTime, and bounded
-- samples of regions, source IPs, user agents, error codes and eventIDs. It returns what the
-- direct scan (src/source/scan.rs) computes from the same objects; tests/athena_sql.rs proves
-- it by running this very text on DuckDB.
--
-- Parameters (rendered by src/source/athena/sql.rs from validated values only; literals
-- arrive quoted):
--   {{table}}            "database"."table"
--   {{account}}          the 12-digit account id (injected projection needs this equality)
--   {{days}}             every delivery day the window touches, 'YYYY/MM/DD', ...
--   {{delivered_from}}   window start, 'YYYYMMDDTHHmmZ' (rounded up to the minute)
--   {{delivered_until}}  window end, same form; the window is half-open
--   {{sample_cap}}       how many distinct values each sample keeps (Samples::CAP)
--   {{path_ranges}}      per configured region, {{path_from}} and {{path_until}}: the window
--                        as a range of "$path" (see fragments/delivered_paths.sql)
WITH delivered AS (
  -- Objects are chosen by the delivery minute in their name, as CloudTrail writes it:
  -- ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_RAND.json.gz. An object holds events from well
  -- before its delivery, so eventTime cannot choose objects without losing late events or
  -- reading them twice; the day partitions are delivery days, so the window's days cover it.
  -- The delivery minute is tested twice, on purpose. The regexp_extract comparisons are the
  -- filter the result depends on; Athena evaluates them on every row, so the rows are right
  -- whether or not anything is pruned. But a function of "$path" prunes no file: without
  -- more, Athena reads every object of the window's day partitions that exists at query
  -- time. The ranges of "$path" itself (delivered_paths) choose the same objects in a form
  -- Athena's engine checks each file against before reading it, so it reads only the
  -- window's objects. Should an engine ignore them, it reads more, never returns less.
  SELECT
    "$path" AS object_path,
    useridentity,
    eventtime,
    eventsource,
    eventname,
    awsregion,
    sourceipaddress,
    useragent,
    errorcode,
    additionaleventdata,
    eventid,
    readonly,
    recipientaccountid
  FROM {{table}}
  WHERE account = {{account}}
    AND delivery_date IN ({{days}})
    AND regexp_extract("$path", '_CloudTrail_[a-z0-9-]+_([0-9]{8}T[0-9]{4}Z)_[^/]*$', 1) >= {{delivered_from}}
    AND regexp_extract("$path", '_CloudTrail_[a-z0-9-]+_([0-9]{8}T[0-9]{4}Z)_[^/]*$', 1) < {{delivered_until}}
    AND
{{> delivered_paths}}
),
checked AS (
  -- A record without what identifies a call is not activity; it is counted, as the scan
  -- counts the records it cannot decode.
  SELECT
    *,
    eventsource IS NOT NULL
      AND eventname IS NOT NULL
      AND regexp_like(
        coalesce(eventtime, ''),
        '^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$'
      ) AS usable
  FROM delivered
),
numbered AS (
  -- CloudTrail can deliver one event in two objects: the first copy is the call, the others
  -- are counted as duplicates. Records without an eventID cannot be matched and all count.
  SELECT
    *,
    usable AND (
      coalesce(eventid, '') = ''
      OR row_number() OVER (PARTITION BY usable, eventid ORDER BY object_path) = 1
    ) AS kept
  FROM checked
),
calls AS (
  SELECT
    usable,
    kept,
    -- The identity, as the raw fields Principal::of (src/cloudtrail/principal.rs) reads; Rust
    -- normalises each row and merges rows of one principal. Only what changes with every
    -- session is dropped here, so that a role makes one row, not one per session: the session
    -- ARN when the session issuer names the role, and the session name after the role id.
    useridentity IS NULL AS no_identity,
    useridentity.type AS identity_type,
    useridentity.accountid AS identity_account,
    recipientaccountid AS recipient_account,
    CASE
      WHEN useridentity.type = 'AssumedRole'
        AND coalesce(useridentity.sessioncontext.sessionissuer.arn, '') <> ''
      THEN NULL
      ELSE useridentity.arn
    END AS identity_arn,
    CASE
      WHEN useridentity.type IN ('AssumedRole', 'AWSAccount')
      THEN split_part(useridentity.principalid, ':', 1)
      ELSE useridentity.principalid
    END AS identity_principal_id,
    useridentity.username AS identity_user_name,
    useridentity.invokedby AS identity_invoked_by,
    useridentity.identityprovider AS identity_provider,
    useridentity.sessioncontext.sessionissuer.arn AS issuer_arn,
    useridentity.onbehalfof.userid AS on_behalf_of_user,
    useridentity.onbehalfof.identitystorearn AS on_behalf_of_store,
    eventsource,
    eventname,
    -- The outcome class of Outcome::of (src/cloudtrail/outcome.rs), by the same substrings.
    CASE
      WHEN coalesce(errorcode, '') = '' THEN 'success'
      WHEN regexp_like(
        lower(errorcode),
        'accessdenied|unauthorized|notauthorized|forbidden|authfailure|invalidclienttokenid|signaturedoesnotmatch'
      ) THEN 'denied'
      WHEN regexp_like(lower(errorcode), 'throttl|limitexceeded|slowdown') THEN 'throttled'
      ELSE 'failed'
    END AS outcome,
    eventtime,
    awsregion,
    sourceipaddress,
    useragent,
    errorcode,
    eventid,
    readonly,
    eventname = 'ConsoleLogin'
      AND lower(CASE WHEN eventname = 'ConsoleLogin'
        THEN json_extract_scalar(additionaleventdata, '$.MFAUsed') END) = 'no' AS login_without_mfa,
    -- An EC2 instance's role session (cloudtrail::principal::is_instance_session). The
    -- session ARN itself: identity_arn above is dropped for sessions with an issuer.
    regexp_like(coalesce(useridentity.arn, ''), ':assumed-role/[^/]+/i-[0-9a-f]{8,17}$') AS instance_session
  FROM numbered
)
SELECT
  usable,
  no_identity,
  identity_type,
  identity_account,
  recipient_account,
  identity_arn,
  identity_principal_id,
  identity_user_name,
  identity_invoked_by,
  identity_provider,
  issuer_arn,
  on_behalf_of_user,
  on_behalf_of_store,
  eventsource,
  eventname,
  outcome,
  -- Every record of the group, duplicates included; `calls` are the first copies only.
  count(*) AS records,
  count_if(kept) AS calls,
  min(eventtime) FILTER (WHERE kept) AS first_time,
  max(eventtime) FILTER (WHERE kept) AS last_time,
  -- Samples: the smallest `sample_cap` distinct values, as JSON arrays (values may hold
  -- commas), and how many distinct values there were.
  json_format(CAST(slice(array_sort(array_agg(DISTINCT awsregion) FILTER (WHERE kept AND awsregion <> '')), 1, {{sample_cap}}) AS JSON)) AS regions,
  count(DISTINCT awsregion) FILTER (WHERE kept AND awsregion <> '') AS regions_distinct,
  json_format(CAST(slice(array_sort(array_agg(DISTINCT sourceipaddress) FILTER (WHERE kept AND sourceipaddress <> '')), 1, {{sample_cap}}) AS JSON)) AS source_ips,
  count(DISTINCT sourceipaddress) FILTER (WHERE kept AND sourceipaddress <> '') AS source_ips_distinct,
  json_format(CAST(slice(array_sort(array_agg(DISTINCT useragent) FILTER (WHERE kept AND useragent <> '')), 1, {{sample_cap}}) AS JSON)) AS user_agents,
  count(DISTINCT useragent) FILTER (WHERE kept AND useragent <> '') AS user_agents_distinct,
  json_format(CAST(slice(array_sort(array_agg(DISTINCT errorcode) FILTER (WHERE kept AND errorcode <> '')), 1, {{sample_cap}}) AS JSON)) AS error_codes,
  count(DISTINCT errorcode) FILTER (WHERE kept AND errorcode <> '') AS error_codes_distinct,
  json_format(CAST(slice(array_sort(array_agg(DISTINCT eventid) FILTER (WHERE kept AND eventid <> '')), 1, {{sample_cap}}) AS JSON)) AS event_ids,
  count(DISTINCT eventid) FILTER (WHERE kept AND eventid <> '') AS event_ids_distinct,
  -- readOnly is unknown for a group when no call said; read-only when none said false.
  count_if(kept AND readonly = 'true') AS read_only_calls,
  count_if(kept AND readonly = 'false') AS write_calls,
  count_if(kept AND login_without_mfa) AS logins_without_mfa,
  count_if(kept AND instance_session) AS instance_calls
FROM calls
GROUP BY
  usable,
  no_identity,
  identity_type,
  identity_account,
  recipient_account,
  identity_arn,
  identity_principal_id,
  identity_user_name,
  identity_invoked_by,
  identity_provider,
  issuer_arn,
  on_behalf_of_user,
  on_behalf_of_store,
  eventsource,
  eventname,
  outcome
