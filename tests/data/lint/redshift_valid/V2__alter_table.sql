alter table sales.orders add column channel varchar(20) default 'web' encode lzo;

alter table sales.orders add column discount decimal(5, 2) not null default 0;

alter table sales.orders drop column flag;

alter table sales.orders rename column note to remark;

alter table sales.orders_archive rename to orders_history;

alter table sales.orders alter column status type varchar(40);

alter table sales.orders alter column remark encode zstd;

alter table sales.orders alter distkey customer_id;

alter table sales.lookup alter diststyle all;

alter table sales.events alter diststyle even;

alter table sales.orders alter compound sortkey (ordered_at, customer_id);

alter table sales.events alter sortkey auto;

alter table sales.lookup alter sortkey none;

alter table sales.events alter encode auto;

alter table sales.orders owner to etl_user;

alter table sales.lines add constraint lines_qty_pk primary key (line_id);

alter table sales.lines drop constraint lines_qty_pk;

alter table sales.orders append from stage_orders;

alter table sales.orders append from stage_orders ignoreextra;

alter table sales.customers append from stage_customers filltarget;

alter table sales.orders row level security on;
