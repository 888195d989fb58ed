create or replace view sales.v_orders as
select o.id, o.status, c.name
from sales.orders o
join sales.customers c on c.id = o.customer_id
with no schema binding;

create or replace view sales.v_counts as
select status, count(*) as orders, listagg(id, ',') within group (order by id) as ids
from sales.orders
group by status;

create table if not exists sales.settings (k varchar(40), v varchar(200)) diststyle all sortkey (k);

create schema if not exists reports;
