-- dbops:lint-ignore DB012
create table sales.regions (id integer not null) diststyle all sortkey (id);
