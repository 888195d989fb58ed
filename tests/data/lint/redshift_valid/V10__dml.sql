insert into sales.lookup (code, label) values ('a', 'Alpha'), ('b', 'Beta');

insert into sales.lookup select code, label from stage_lookup;

update sales.orders set status = 'open' from sales.customers c
where c.customer_id = sales.orders.customer_id and c.region = 'EU';

delete from sales.orders using sales.customers c
where c.customer_id = sales.orders.customer_id and c.region = 'XX';

merge into sales.customers using stage_customers s on sales.customers.customer_id = s.customer_id
when matched then update set name = s.name
when not matched then insert values (s.customer_id, s.name, s.region, s.created);

merge into sales.customers using stage_customers s on sales.customers.customer_id = s.customer_id remove duplicates;

with recent as (select customer_id from sales.orders where ordered_at > dateadd(day, -30, getdate()))
select c.name, count(*) from sales.customers c join recent r using (customer_id) group by 1;

select order_id, listagg(sku, ',') within group (order by sku) as skus
from sales.lines group by order_id;

select top 10 * from sales.orders order by ordered_at desc;

select order_id, json_extract_path_text(note, 'a') from sales.orders where note similar to '%x%';

select * into temp table recent_orders from sales.orders where ordered_at > '2024-01-01';

select o.order_id, o.doc.items[0].sku from sales.shapes o;
