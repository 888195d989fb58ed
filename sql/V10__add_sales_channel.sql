-- V10: record where a sale happened (web, store, partner).
--
-- Redshift adds one column per ALTER TABLE statement. A new column is nullable here so that
-- existing rows stay valid; V11 fills it in.
alter table analytics.fact_sales add column channel varchar(20);

comment on column analytics.fact_sales.channel is 'web, store or partner; store for sales before V10.';
