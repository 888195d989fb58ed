create user etl_user password 'md5153c434b4b77c89e6b94f12c5393af5b' createdb connection limit 10;

create user reader password disable;

create user analyst with password 'Secret123' valid until '2027-01-01' syslog access unrestricted;

alter user etl_user set search_path to sales, public;

alter user reader connection limit 5;

create group reporting with user reader, analyst;

alter group reporting add user etl_user;

alter group reporting drop user etl_user;

create role analyst_role;

create role auditor externalid 'aud-1';

grant role analyst_role to analyst;

grant role analyst_role to role auditor;

grant select on table sales.orders to role analyst_role;

grant select on all tables in schema sales to role analyst_role;

grant usage on schema sales to role analyst_role;

grant usage, create on schema sales to group reporting;

grant execute on procedure sales.refresh_all() to role analyst_role;

grant execute on all functions in schema sales to group reporting;

grant usage on language plpythonu to etl_user;

grant select (order_id, status) on sales.orders to reader;

grant create model to role analyst_role;

grant all on schema sales to etl_user with grant option;

revoke select on table sales.orders from role analyst_role;

revoke all on all tables in schema sales from group reporting;

alter default privileges in schema sales grant select on tables to group reporting;

alter default privileges for user etl_user in schema sales grant select on tables to role analyst_role;

alter default privileges for user etl_user grant execute on functions to group reporting;

alter default privileges in schema sales revoke select on tables from group reporting;

alter schema sales owner to etl_user;

alter schema sales quota 50 gb;

create schema if not exists marts authorization etl_user quota unlimited;
