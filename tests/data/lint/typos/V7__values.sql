create table t1 (id int) diststyle evn; -- typo

create table t2 (id int encode az46) diststyle all sortkey (id); -- typo

create materialized view mv auto refresh yess as select 1 as one; -- typo

create table t3 (a int) sortkey (a) diststyle all backup nope; -- typo

alter table t3 add column b int encode az46; -- typo
