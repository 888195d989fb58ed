create view sales.v_open_orders as
select id, status from sales.orders where status = 'open';
