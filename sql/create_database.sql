-- The database that holds trailhound's CloudTrail table. Running it again changes nothing.
--
-- Parameters (rendered by src/source/athena/sql.rs from validated values only):
--   {{database}}  the database name from `athena.database`, as a quoted identifier
CREATE DATABASE IF NOT EXISTS {{database}}
COMMENT 'CloudTrail logs hunted by trailhound'
