-- V8: what the reporting group may do: read the analytics schema, nothing else.
--
-- Never grant to PUBLIC (every user of the cluster, including future ones): `dbops lint` refuses
-- it (rule DB006). Grant to a group and add users to the group:
--     ALTER GROUP <database>_reporting ADD USER looker;
grant usage on schema analytics to group ${flyway:database}_reporting;

grant select on all tables in schema analytics to group ${flyway:database}_reporting;

-- "all tables" means the tables that exist now. Default privileges cover the tables and views
-- the migrating user creates later; the afterMigrate callback catches objects created by others.
alter default privileges in schema analytics grant select on tables to group ${flyway:database}_reporting;
