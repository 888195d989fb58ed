vacum sales.orders; -- typo

vacuum ful sales.orders; -- typo

grant select on all tables in schema sales to grup reporting; -- typo

alter datashare sales_share add tabel sales.orders; -- typo

create user bob pasword 'x'; -- typo

refresh materialised view sales.mv_daily; -- typo

create or replace view sales.v as select 1 as one with no schema bindig; -- typo
