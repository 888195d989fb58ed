-- The issue's first typo: COLUMN misspelt and the type's parenthesis never closed.
create table t (id int, x int) diststyle all sortkey (id);
alter table t add colum x varchar(10; -- typo
