grant usage on schema sales to group reporting;
grant select on all tables in schema sales to public;
