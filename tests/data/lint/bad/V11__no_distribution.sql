create table sales.customers (
    id bigint not null,
    name varchar(100)
);
