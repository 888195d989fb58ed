insert into sales.orders (id, status) values (1, 'new');
commit;
