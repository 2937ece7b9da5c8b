  -- Partition projection: Athena computes the partitions from these rules, so the hunt never
  -- runs partition DDL. Days run from `athena.projection_start` to today; regions are the
  -- configured `trail.regions`; accounts are either given by each query (injected: every
  -- query must say `account = '...'`, which the activity query always does) or listed.
  'projection.enabled' = 'true',
{{#accounts_injected}}
  'projection.account.type' = 'injected',
{{/accounts_injected}}
{{#accounts_listed}}
  'projection.account.type' = 'enum',
  'projection.account.values' = {{accounts}},
{{/accounts_listed}}
  'projection.region.type' = 'enum',
  'projection.region.values' = {{regions}},
  'projection.delivery_date.type' = 'date',
  'projection.delivery_date.format' = 'yyyy/MM/dd',
  'projection.delivery_date.range' = {{projection_range}},
  'projection.delivery_date.interval' = '1',
  'projection.delivery_date.interval.unit' = 'DAYS',
  'storage.location.template' = {{location_template}}
