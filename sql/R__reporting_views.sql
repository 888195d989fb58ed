-- R: the reporting views, in a repeatable script.
--
-- A repeatable script (R__<description>.sql) has no version: dbops applies it after the
-- versioned scripts and again whenever its checksum changes. Edit a view here and the next
-- migrate re-creates it. So every statement must succeed when run a second time: CREATE OR
-- REPLACE, never a bare CREATE (`dbops lint` rule DB007).
--
-- Placeholders: v_recent_sales covers the last ${recent_sales_days} days, a value that each
-- environment sets (written as a dollar sign and the name in braces), e.g.
--     DBOPS_PLACEHOLDER_RECENT_SALES_DAYS=90 dbops migrate
-- or `dbops --placeholder recent_sales_days=90 migrate`. dbops refuses to run when a
-- placeholder has no value, naming the file and line. The checksum of a repeatable script is
-- taken after placeholders are replaced, so changing the value re-creates the views.
--
-- CREATE OR REPLACE VIEW may add columns at the end but not remove or retype them; to do that,
-- DROP VIEW first. A view also stops its tables' columns from being dropped or retyped. On
-- Redshift, a view created WITH NO SCHEMA BINDING (a late-binding view) does not; PostgreSQL has
-- no such clause, so this portable example uses ordinary views.

create or replace view analytics.v_daily_sales as
select
    d.calendar_date,
    p.category,
    coalesce(f.channel, 'unknown') as channel,
    count(*)                       as sales,
    sum(f.quantity)                as units,
    sum(f.amount)                  as revenue
from analytics.fact_sales f
join analytics.dim_date d on d.date_key = f.date_key
join analytics.dim_product p on p.product_key = f.product_key
group by d.calendar_date, p.category, coalesce(f.channel, 'unknown');

create or replace view analytics.v_recent_sales as
select
    f.sale_id,
    f.sold_at,
    c.full_name as customer,
    c.city,
    p.product_name,
    f.quantity,
    f.amount
from analytics.fact_sales f
join analytics.dim_customer c on c.customer_key = f.customer_key
join analytics.dim_product p on p.product_key = f.product_key
where f.sold_at >= current_date - interval '${recent_sales_days} days';
