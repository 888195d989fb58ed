-- Callback: runs after every migrate that applied something (Flyway's afterMigrate event).
--
-- V8's default privileges cover objects that the migrating user creates. Tables created by
-- anyone else (an ETL user, a colleague by hand) would stay invisible to reporting; granting
-- again here fixes that on every deployment. Callbacks run every time, so each statement must be
-- safe to repeat: GRANT is.
grant select on all tables in schema analytics to group ${flyway:database}_reporting;
