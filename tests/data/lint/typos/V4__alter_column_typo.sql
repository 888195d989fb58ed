-- sqlglot gives up inside this ALTER TABLE; the finding names the line it gave up on.
alter table sales.orders
    alter column note
    encod zstd; -- typo
