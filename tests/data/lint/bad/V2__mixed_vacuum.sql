update sales.orders set status = 'closed' where status = 'done';
vacuum sales.orders;
