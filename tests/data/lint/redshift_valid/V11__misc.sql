create schema if not exists staging;

alter schema staging rename to stage;

drop schema if exists stage;

create rls policy own_region with (region char(2)) using (region = current_user);

attach rls policy own_region on sales.customers to role analyst_role;

detach rls policy own_region on sales.customers from role analyst_role;

create masking policy mask_name with (name varchar(200)) using ('***');

attach masking policy mask_name on sales.customers (name) to role analyst_role priority 10;

alter table sales.orders alter column status set default 'new';

alter table sales.orders alter column status drop default;

drop table if exists sales.orders_history cascade;

drop user if exists reader;

drop group reporting;

drop role auditor force;

drop library urlparse3;

create database analytics with owner etl_user connection limit 50;

alter database analytics rename to analytics_v2;

cancel 12345;

prepare plan1 (int) as select * from sales.orders where order_id = $1;

execute plan1 (10);

deallocate plan1;
