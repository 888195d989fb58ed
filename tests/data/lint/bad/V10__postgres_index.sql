create index orders_status on sales.orders (status);
