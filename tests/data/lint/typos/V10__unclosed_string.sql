comment on table sales.orders is 'one row per order; -- typo
