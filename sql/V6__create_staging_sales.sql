-- V6: the landing table for raw sales files.
--
-- On Redshift the loading job fills it with
--     COPY staging.sales_raw FROM 's3://<bucket>/sales/2024-01-31/' IAM_ROLE '<role arn>' FORMAT AS CSV;
-- then transforms its rows into analytics.fact_sales and empties it. Loading data is the ETL's
-- job, not a migration's: migrations only shape the structure.
-- Every column is text so a malformed file still loads and can be inspected.
-- dbops:lint-ignore DB012 staging table; Redshift's AUTO distribution suits a load-and-empty table
create table staging.sales_raw (
    source_file   varchar(1024) not null,
    line_number   integer       not null,
    sale_id       varchar(40),
    sold_at       varchar(40),
    customer_id   varchar(32),
    sku           varchar(40),
    quantity      varchar(20),
    unit_price    varchar(20),
    loaded_at     timestamp     not null  -- set by the loading job
);
