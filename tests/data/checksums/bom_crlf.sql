select 1;
