create group reporting;

grant usage on schema sales to group reporting;

grant select on all tables in schema sales to group reporting;

alter default privileges in schema sales grant select on tables to group reporting;

grant select, insert on sales.orders, sales.customers to group reporting;

revoke all on schema public from public;
