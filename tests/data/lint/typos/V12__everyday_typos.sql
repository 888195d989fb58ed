create table t (id int, name varchar(20) not null defualt 'x'); -- typo

alter table t alter column c type varchr(40); -- typo

grant select on t to gruop g; -- typo

create view v as selct 1; -- typo

copy t from 's3://x' iam_role default formt as csv; -- typo

unload ('select 1') to 's3://x' iam_rol default; -- typo

insert into t (a, b) vaules (1, 2); -- typo

create table t (id int) distkey (id) sortkey (id) diststyle kye; -- typo

create table t (id int) sortkey (id) distkey (id) diststyle key compund sortkey (id); -- typo

alter table t drop colum c; -- typo

alter table t add column c int not nul; -- typo

create schema if not exist s; -- typo

drop table if exist t; -- typo

grant select on all tables in schema s to group; -- typo

create table t (id int identiy(1,1)); -- typo

select a from t were a = 1; -- typo

select a from t group a; -- typo

update t set a = 1 where; -- typo

create or replace view v as select a from t wher a = 1; -- typo

grant usage on schema s to grop g; -- typo
