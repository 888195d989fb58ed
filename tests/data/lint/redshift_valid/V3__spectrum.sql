create external schema spectrum
from data catalog
database 'lake'
iam_role 'arn:aws:iam::123456789012:role/spectrum'
create external database if not exists;

create external schema if not exists hive_lake
from hive metastore database 'hive_db' uri '172.10.10.10' port 9083
iam_role 'arn:aws:iam::123456789012:role/spectrum';

create external schema apg
from postgres database 'orders' schema 'public'
uri 'orders.cluster-xyz.eu-west-1.rds.amazonaws.com' port 5432
iam_role 'arn:aws:iam::123456789012:role/federated'
secret_arn 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-abc';

create external schema shared_sales from redshift database 'sales_share' schema 'sales';

create external table spectrum.sales (
    salesid   integer,
    listid    integer,
    saledate  date,
    pricepaid decimal(8, 2),
    saletime  timestamp
)
row format delimited fields terminated by '\t'
stored as textfile
location 's3://example-bucket/tickit/spectrum/sales/'
table properties ('numRows' = '170000');

create external table spectrum.events_parquet (
    event_id bigint,
    payload  varchar(16383)
)
partitioned by (event_date date)
stored as parquet
location 's3://example-bucket/events/';

create external table spectrum.trail (
    event_version int,
    event_time    timestamp,
    useragent     varchar(max)
)
row format serde 'org.openx.data.jsonserde.JsonSerDe'
with serdeproperties ('dots.in.keys' = 'true')
location 's3://example-bucket/json/cloudtrail/';

create external table spectrum.lineitem_copy
stored as parquet
location 's3://example-bucket/lineitem/'
as select * from sales.lines;

alter table spectrum.events_parquet add if not exists partition (event_date = '2024-01-01')
location 's3://example-bucket/events/event_date=2024-01-01/';

alter table spectrum.events_parquet drop partition (event_date = '2024-01-01');

alter table spectrum.sales set table properties ('numRows' = '200000');

alter table spectrum.sales set location 's3://example-bucket/tickit/spectrum/sales_v2/';

drop table spectrum.lineitem_copy;
