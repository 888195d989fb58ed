-- The old table is not needed any more, or so we think.
drop table sales.orders_2019;
