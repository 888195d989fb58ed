alter table sales.customers alter column name type varchar(400);
