create view sales.v_orders as
select o.order_id, o.status, c.name
from sales.orders o join sales.customers c on c.customer_id = o.customer_id
with no schema binding;

create or replace view sales.v_open as
select order_id, status from sales.orders where status = 'open';

create or replace view spectrum_v as
select salesid, pricepaid from spectrum.sales
with no schema binding;

create materialized view sales.mv_daily
backup no
diststyle key distkey (day)
sortkey (day)
auto refresh yes
as
select trunc(ordered_at) as day, sum(amount) as amount from sales.orders group by 1;

create materialized view sales.mv_status auto refresh no as
select status, count(*) as n from sales.orders group by status;

refresh materialized view sales.mv_daily;

alter materialized view sales.mv_status auto refresh yes;

drop materialized view if exists sales.mv_status;

drop view if exists sales.v_open;
