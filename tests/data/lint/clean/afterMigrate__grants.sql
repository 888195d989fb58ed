grant select on all tables in schema sales to group reporting;
