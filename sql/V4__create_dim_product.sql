-- V4: products. A type 1 dimension: a change overwrites the row, no history is kept.
--
-- Always give character columns a length: on Redshift VARCHAR without one is VARCHAR(256) and
-- CHAR is CHAR(1), on PostgreSQL both are unlimited (`dbops lint` rule DB009).
-- Redshift-only: DISTSTYLE ALL SORTKEY (sku)
-- dbops:lint-ignore DB012 portable example (PostgreSQL too); Redshift chooses DISTSTYLE/SORTKEY AUTO
create table analytics.dim_product (
    product_key   bigint        not null primary key,
    sku           varchar(40)   not null,
    product_name  varchar(200)  not null,
    category      varchar(60)   not null,
    list_price    decimal(12,2)
);

insert into analytics.dim_product (product_key, sku, product_name, category)
values (-1, 'unknown', 'Unknown product', 'Unknown');
