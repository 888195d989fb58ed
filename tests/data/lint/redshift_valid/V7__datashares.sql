create datashare sales_share set publicaccessible false;

alter datashare sales_share add schema sales;

alter datashare sales_share add table sales.orders, sales.customers;

alter datashare sales_share add all tables in schema sales;

alter datashare sales_share add function sales.f_upper(varchar);

alter datashare sales_share remove table sales.customers;

alter datashare sales_share set includenew = true for schema sales;

alter datashare sales_share set publicaccessible = true;

grant usage on datashare sales_share to account '123456789012';

grant usage on datashare sales_share to namespace 'a1b2c3d4-5678-90ab-cdef-1234567890ab';

revoke usage on datashare sales_share from account '123456789012';

create database sales_consumer from datashare sales_share of account '123456789012' namespace 'a1b2c3d4-5678-90ab-cdef-1234567890ab';

grant usage on database sales_consumer to role analyst_role;

drop datashare sales_share;
