create or replace procedure sales.close_orders(days integer, inout closed integer)
as $$
declare
    cutoff timestamp := getdate() - days;
begin
    update sales.orders set status = 'closed' where ordered_at < cutoff;
    get diagnostics closed := row_count;
    raise info 'closed % orders', closed;
end;
$$ language plpgsql
security definer;

create or replace procedure sales.refresh_all()
as $body$
begin
    refresh materialized view sales.mv_daily;
    commit;
end;
$body$ language plpgsql;

call sales.refresh_all();

create or replace function sales.f_net(amount float, rate float)
returns float
stable
as $$
    return amount * (1 - rate)
$$ language plpythonu;

create or replace function sales.f_upper(varchar)
returns varchar
immutable
as $$
    select upper($1)
$$ language sql;

create library urlparse3
language plpythonu
from 's3://example-bucket/urlparse3-1.0.3.zip'
iam_role 'arn:aws:iam::123456789012:role/udf';

create external function sales.f_lambda_upper(varchar)
returns varchar
volatile
lambda 'example-upper'
iam_role 'arn:aws:iam::123456789012:role/lambda';

drop procedure sales.refresh_all();

drop function sales.f_upper(varchar);
