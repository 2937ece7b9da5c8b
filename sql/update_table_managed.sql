-- Turns partition projection off on a table that had it, so that the partitions the hunt
-- adds are the ones Athena reads. Harmless on a table that never had projection.
--
-- Parameters: {{table}}, `database`.`table` as a quoted identifier.
ALTER TABLE {{table}} SET TBLPROPERTIES ('projection.enabled' = 'false')
