create view sales.v_orders as
select order_id,
       status, -- typo
from sales.orders;
