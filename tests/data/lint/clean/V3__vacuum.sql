-- Non-transactional statements alone in their script, with a harmless ANALYZE.
vacuum delete only sales.orders to 75 percent;
analyze sales.orders;
