create view sales.v_orders as select * from sales.orders;
