-- V5: the fact table: one row per sold line item.
--
-- Facts carry the dimensions' keys plus the measures (quantity, amounts). It is by far the
-- largest table, which is where Redshift's physical design matters most:
--   DISTKEY (customer_key)  rows of one customer live on one slice, next to their dim_customer
--                           rows (same DISTKEY there), so that join moves no data;
--   SORTKEY (date_key)      queries filter on dates; sorted blocks let Redshift skip the rest.
-- A Redshift-only warehouse ends the statement with
--     DISTSTYLE KEY DISTKEY (customer_key) SORTKEY (date_key)
-- and may add ENCODE AZ64 / ZSTD per column. This portable example leaves both to AUTO.
-- dbops:lint-ignore DB012 portable example (PostgreSQL too); Redshift chooses DISTSTYLE/SORTKEY AUTO
create table analytics.fact_sales (
    sale_id       bigint        not null primary key,
    date_key      integer       not null references analytics.dim_date (date_key),
    customer_key  bigint        not null references analytics.dim_customer (customer_key),
    product_key   bigint        not null references analytics.dim_product (product_key),
    quantity      integer       not null,
    unit_price    decimal(12,2) not null,
    amount        decimal(14,2) not null,
    sold_at       timestamp     not null
);

comment on table analytics.fact_sales is 'One row per sold line item.';
comment on column analytics.fact_sales.amount is 'quantity * unit_price, after discounts, in EUR.';
