-- V3: customers, as a slowly changing dimension (type 2).
--
-- When a customer moves city, the ETL closes the current row (valid_to, is_current = false) and
-- inserts a new one, so old sales still report under the city they were made in.
-- customer_key is the warehouse's own key, assigned by the ETL; customer_id is the key of the
-- source system. (Redshift's IDENTITY(1,1) and PostgreSQL's GENERATED ... AS IDENTITY are
-- written differently, so a portable script leaves key assignment to the ETL.)
--
-- Redshift-only: DISTSTYLE KEY DISTKEY (customer_key) SORTKEY (customer_id) — the same DISTKEY as
-- fact_sales, so the join between them needs no data movement.
-- dbops:lint-ignore DB012 portable example (PostgreSQL too); Redshift chooses DISTSTYLE/SORTKEY AUTO
create table analytics.dim_customer (
    customer_key  bigint       not null primary key,
    customer_id   varchar(32)  not null,
    full_name     varchar(200) not null,
    email         varchar(254),
    city          varchar(100),
    country_code  char(2),
    valid_from    timestamp    not null,
    valid_to      timestamp,
    is_current    boolean      not null default true
);

-- The "unknown" member: facts whose customer is not known yet point here instead of being lost.
insert into analytics.dim_customer (customer_key, customer_id, full_name, valid_from, is_current)
values (-1, 'unknown', 'Unknown customer', timestamp '1900-01-01 00:00:00', true);
