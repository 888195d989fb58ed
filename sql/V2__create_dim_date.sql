-- V2: the calendar dimension, one row per day.
--
-- date_key is the date written as yyyymmdd (20240131): small, readable, and it sorts like the
-- date. The ETL fills this table once for a range of years.
--
-- Primary and foreign keys: PostgreSQL enforces them; Redshift only records them and uses them
-- to plan joins, so the loading jobs must keep them true there.
--
-- Distribution and sort keys: on Redshift a small dimension is best copied to every node
-- (DISTSTYLE ALL) and sorted on the date. A Redshift-only warehouse would end the statement with
--     DISTSTYLE ALL SORTKEY (calendar_date)
-- This example also runs on PostgreSQL, which has no such clauses, so it leaves the choice to
-- Redshift's AUTO and tells `dbops lint` why, with a reason, on the line above the statement:
-- dbops:lint-ignore DB012 portable example (PostgreSQL too); Redshift chooses DISTSTYLE/SORTKEY AUTO
create table analytics.dim_date (
    date_key      integer     not null primary key,
    calendar_date date        not null,
    year          smallint    not null,
    quarter       smallint    not null,
    month         smallint    not null,
    month_name    varchar(9)  not null,
    day_of_week   smallint    not null,  -- 1 = Monday ... 7 = Sunday (ISO)
    is_weekend    boolean     not null
);

comment on table analytics.dim_date is 'One row per calendar day; date_key = yyyymmdd.';
