begin;

start transaction;

end;

commit work;

abort;

rollback;

create table "Sales"."Order Lines" ("Line" int, "Sku" varchar(40)) diststyle even sortkey ("Line");

grant select on "Sales"."Order Lines" to "Report User";

grant all privileges on all tables in schema sales to role analyst_role;

grant select on table sales.orders, sales.customers to group reporting, group finance;

revoke usage on schema sales from public;

alter user etl_user password 'md5153c434b4b77c89e6b94f12c5393af5b';

alter user reader valid until 'infinity';

create table sales.defaults (
    id     integer not null default 0 encode az64,
    amount decimal(38, 10) default 0.0,
    note   varchar(10) collate case_insensitive
) sortkey(id) diststyle all;

insert into sales.defaults default values;

update sales.defaults set amount = default where id = 0;

create or replace view sales.v_ranked (customer_id, total, rank_in_region) as
with totals as (select customer_id, sum(amount) as total from sales.orders group by 1)
select t.customer_id, t.total, rank() over (order by t.total desc) from totals t
union all
select 0, 0, 0;

drop view if exists sales.v_ranked cascade;

drop table if exists sales.defaults, sales.lookup;

truncate table sales.events;

alter table sales.orders drop column channel cascade;

alter table sales.orders add column created_at timestamp default sysdate;

create temp table recent_ids as select order_id from sales.orders where ordered_at > current_date - 7;

select nvl(note, '-'), decode(status, 'new', 1, 0), datediff(day, ordered_at, getdate()), convert_timezone('UTC', 'Europe/Paris', ordered_at)
from sales.orders;

select approximate count(distinct customer_id) from sales.orders;

select order_id from sales.orders where status ilike 'op%' and note ~ '^x' order by 1 limit 10 offset 5;
