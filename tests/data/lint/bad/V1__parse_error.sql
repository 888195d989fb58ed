-- A typo two lines into the script.
create table sales.orders (id bigint not null, status varchar(20)) diststyle even sortkey (id);
selec id from sales.orders;
