copy sales.orders from 's3://example-bucket/in/' iam_role default format as csv ignorehedaer 1; -- typo

unload ('select 1') to 's3://example-bucket/out/' iam_role default paralel off; -- typo
