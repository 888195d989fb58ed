create or replace procedure sales.close_orders(days integer)
as $$
begin
    update sales.orders set status = 'closed' where ordered_at < getdate() - days;
    commit;
end;
$$ language plpgsql;

call sales.close_orders(30);

create materialized view sales.mv_daily auto refresh yes as
select trunc(ordered_at) as day, sum(amount) as amount from sales.orders group by 1;

merge into sales.customers using sales.orders_copy o on sales.customers.id = o.customer_id
when matched then update set name = sales.customers.name
when not matched then insert (id, name) values (o.customer_id, 'unknown');

unload ('select id from sales.orders') to 's3://bucket/orders/' iam_role default;

copy sales.orders from 's3://bucket/in/' iam_role 'arn:aws:iam::123456789012:role/load' format as csv;
