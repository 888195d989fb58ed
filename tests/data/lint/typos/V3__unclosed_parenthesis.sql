-- A column list whose closing parenthesis was deleted.
create table sales.customers (
    id   integer not null,
    name varchar(200) not null
diststyle all sortkey (id); -- typo
