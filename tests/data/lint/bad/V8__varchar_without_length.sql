create table sales.notes (
    id bigint not null,
    body varchar
) diststyle even sortkey (id);
