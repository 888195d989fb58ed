-- V11: a data migration. All sales before the channel existed were made in stores.
--
-- It runs in one transaction with its history row, like any versioned script. On Redshift an
-- UPDATE writes new row versions and marks the old ones deleted; V12 reclaims that space.
update analytics.fact_sales
set channel = 'store'
where channel is null;
