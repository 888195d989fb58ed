-- V13: a view of the customers as they are today (the current row of each SCD2 history).
--
-- A view in a versioned script is created once; to change it later, write a new versioned
-- script. Views that change often belong in a repeatable script instead (see R__reporting_views).
-- Name the columns: `SELECT *` freezes a view's columns when it is created (lint rule DB010).
create view analytics.v_current_customers as
select
    customer_key,
    customer_id,
    full_name,
    city,
    country_code,
    valid_from
from analytics.dim_customer
where is_current;

comment on view analytics.v_current_customers is 'The current version of every customer.';
