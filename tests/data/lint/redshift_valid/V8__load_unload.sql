copy sales.orders
from 's3://example-bucket/orders/'
iam_role 'arn:aws:iam::123456789012:role/load'
format as csv
delimiter ','
ignoreheader 1
dateformat 'auto'
timeformat 'auto'
region 'eu-west-1'
gzip;

copy sales.orders (order_id, customer_id, ordered_at)
from 's3://example-bucket/orders.manifest'
iam_role default
manifest
format as parquet;

copy sales.events from 's3://example-bucket/events/' iam_role default json 'auto ignorecase';

copy sales.events from 's3://example-bucket/events/' iam_role default format as json 's3://example-bucket/jsonpaths.json'
timeformat 'epochmillisecs' truncatecolumns blanksasnull emptyasnull maxerror 10 compupdate off statupdate on;

copy sales.lookup from 's3://example-bucket/lookup.txt'
credentials 'aws_iam_role=arn:aws:iam::123456789012:role/load'
delimiter '|' removequotes escape acceptinvchars null as '\\N' fillrecord;

unload ('select * from sales.orders where ordered_at > ''2024-01-01''')
to 's3://example-bucket/unload/orders_'
iam_role 'arn:aws:iam::123456789012:role/unload'
format as parquet
partition by (status)
allowoverwrite;

unload ('select order_id, amount from sales.orders')
to 's3://example-bucket/unload/amounts_'
iam_role default
csv header
delimiter ','
parallel off
maxfilesize 100 mb
manifest verbose
encrypted kms_key_id '1234abcd-12ab-34cd-56ef-1234567890ab'
gzip;

unload ('select * from sales.lookup') to 's3://example-bucket/unload/lookup_' iam_role default json extension 'json';
