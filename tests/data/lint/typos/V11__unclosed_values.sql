-- An unclosed parenthesis runs on to the end of the script: the statement after it is read as part of it.
insert into sales.lookup (code, label) values ('a', 'Alpha'; -- typo

insert into sales.lookup (code, label) values ('b', 'Beta');
