-- Brings the projection rules of an existing table up to date with the config (new regions,
-- listed accounts, an earlier projection start), and turns projection back on for a table
-- that was managed. Same parameters as create_table_projection.sql.
ALTER TABLE {{table}} SET TBLPROPERTIES (
{{> projection_properties}}
)
