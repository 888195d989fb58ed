-- V12: reclaim the space V11's UPDATE left behind and re-sort the table.
--
-- VACUUM cannot run inside a transaction block (neither on Redshift nor on PostgreSQL), so it
-- lives alone in its own script and dbops runs that script in autocommit. If it fails, the
-- history table records a failed row and later runs stop until `dbops repair`.
-- On Redshift only one VACUUM runs at a time per cluster; schedule big ones off-hours.
vacuum analytics.fact_sales;
