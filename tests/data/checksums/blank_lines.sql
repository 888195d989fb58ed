


select 1;


