alter table sales.orders alter column id type integer;
