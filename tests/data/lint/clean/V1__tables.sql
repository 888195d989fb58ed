-- Valid Redshift that a linter must not trip over.
create schema if not exists sales;

create table sales.orders (
    id          bigint identity(1, 1) encode az64,
    customer_id integer not null encode az64 distkey,
    ordered_at  timestamp not null sortkey,
    status      varchar(20) not null default 'new',
    notes       varchar(max),
    payload     super,
    amount      decimal(12,2)
);

create table sales.customers (
    id   integer not null,
    name varchar(200) not null,
    primary key (id)
) diststyle key distkey (id) compound sortkey (id, name);

create table sales.events (id bigint, at timestamp) diststyle even sortkey auto;

create table sales.clicks (id bigint, at timestamp, page varchar(300)) diststyle auto interleaved sortkey (at, page);

create table sales.orders_copy (like sales.orders including defaults);

create temp table recent as select id from sales.orders;

create table sales.daily diststyle even sortkey (day) as
select trunc(ordered_at) as day, count(*) as orders from sales.orders group by 1;

comment on table sales.orders is 'One row per order; notes can be long.';
