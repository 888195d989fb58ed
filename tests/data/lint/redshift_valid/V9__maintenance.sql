analyze sales.orders;

analyze sales.orders (order_id, status);

analyze sales.orders predicate columns;

analyze;

analyze compression sales.orders;

analyze compression sales.orders (status) comprows 100000;

vacuum;

vacuum full sales.orders;

vacuum sort only sales.orders;

vacuum delete only sales.orders to 75 percent;

vacuum reindex sales.events;

vacuum recluster sales.orders;

vacuum full sales.orders to 100 percent boost;

set search_path to sales, public;

set statement_timeout to 600000;

set query_group to 'etl';

set datestyle to 'ISO, MDY';

set enable_case_sensitive_identifier to true;

reset query_group;

reset all;

comment on table sales.orders is 'One row per order';

comment on column sales.orders.status is 'new, open or closed';

comment on view sales.v_orders is 'Orders with their customer';

comment on table sales.lookup is null;

lock sales.orders;

truncate sales.lookup;

show search_path;
