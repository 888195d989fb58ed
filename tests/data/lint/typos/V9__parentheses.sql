select a from t where a in (1, 2)); -- typo

call sales.close_orders(30; -- typo
