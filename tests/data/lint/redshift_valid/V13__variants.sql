-- Variants of everyday statements: optional words, AS in options, several grantees, types by their other names.
create table t (a int) compound sortkey(a);

create table if not exists t (a int identity(0,1) primary key) diststyle all;

alter table t add column c int default null;

grant select on all tables in schema s to u1, u2;

grant usage on schema s to group g1, group g2;

alter default privileges for user a, b in schema s grant all on tables to group g;

grant temp on database d to group g;

grant create on database d to u;

set timezone = 'UTC';

set time zone 'UTC';

vacuum;

analyze;

call p();

copy t from 's3://x' iam_role default format parquet;

copy t from 's3://x' credentials 'aws_access_key_id=a;aws_secret_access_key=b' csv;

copy t from 's3://x' iam_role 'arn' delimiter '\t' ignoreheader as 1 region as 'us-east-1';

copy t from 's3://x' iam_role 'arn' format csv quote as '"' dateformat as 'YYYY-MM-DD' timeformat as 'auto';

copy t from 's3://x' iam_role 'arn' format as avro 'auto';

copy t from 's3://x' iam_role 'arn' json 's3://x/paths.json' gzip acceptinvchars as '?';

unload ('select 1') to 's3://x' iam_role 'arn' parquet;

unload ('select 1') to 's3://x' iam_role 'arn' allowoverwrite parallel false;

create or replace function f(int) returns int immutable as 'select $1' language sql;

create temp table t2 (like s.x);

alter table t alter column c type varchar(100);

alter table t alter column c type varchar(max);

alter table t rename to t2;

drop function f(int);

create schema s authorization u;

create user u with password 'x' nocreatedb;

alter group g add user u1, u2;

revoke all on schema s from group g cascade;

alter table t owner to "u";

comment on column s.t.c is 'x';

select getdate(), current_user, sysdate;

grant select on s.t to group "Quoted Group";

create table t3 as select 1 as a;

create materialized view mv as select 1 as a;

create table t4 (a varchar(10) not null unique);

delete from t where exists (select 1 from u where u.id = t.id);

create or replace procedure p(a int) as $$ begin null; end; $$ language plpgsql security definer set search_path = sales, public;

create or replace procedure p2() as $$ begin null; end; $$ language plpgsql security invoker;

grant execute on function s.f(int) to group g;

grant usage on language plpgsql to group g;

alter table t add column d varchar(10) encode zstd not null default '';

alter table t alter distkey a;

alter table t alter sortkey (a, b);

create table t5 (a int, b int, primary key (a, b), foreign key (b) references t6 (id)) diststyle key distkey (a) sortkey (a);

create table t7 (a timestamp without time zone, b timestamp with time zone, c character varying(10), d double precision, e int8, f float8, g bool, h numeric(10,2), i text, j hllsketch, k varbinary(10), l nchar(2));

select * from t where a between 1 and 2 and b is not null and c not in ('x');

insert into t (a) values (1), (2);

insert into t values (default, 'x');

show tables from schema d.s;

show datashares;

set search_path to '$user', public;

reset search_path;

drop materialized view mv;

drop schema s cascade;

create view v as select a::varchar(10), cast(b as int) from t;

select a from t1 left join t2 using (a) full outer join t3 on t3.a = t1.a;

select a, b, c from t group by rollup (a, b);

update t set a = t2.a from t2 where t.id = t2.id;

create table t8 (id int) backup no;

create table if not exists t9 (like t8);

alter table t add constraint t_fk foreign key (b) references t6 (id);

analyze t predicate columns;

analyze t all columns;

vacuum t to 99 percent;

select listagg(distinct a, ',') within group (order by a) over (partition by b) from t;

select json_parse('{"a":1}');

select a from t order by a nulls first;

select median(a), percentile_cont(0.5) within group (order by a) from t;

create or replace view v2 as select 1 as one with no schema binding;

drop user u;

drop table t cascade;

lock table t;

create or replace procedure sales.p_nonatomic(days int) nonatomic as $$
begin
    delete from sales.events where at < getdate() - days;
end;
$$ language plpgsql;
