-- Findings silenced with a reason, each way the comment may be placed.

-- dbops:lint-ignore DB004 the table held a copy that V1 made; nothing reads it
drop table sales.orders_copy;

truncate sales.events; -- dbops:lint-ignore DB004 events are reloaded nightly from S3

-- dbops:lint-ignore DB004,DB008 the view and its dependants are re-created in R__views
-- (a second comment line between the ignore and the statement)
drop table sales.clicks cascade;
