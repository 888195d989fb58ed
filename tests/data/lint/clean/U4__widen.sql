-- Undo scripts reverse a version: dropping is what they are for.
alter table sales.customers drop column name;
