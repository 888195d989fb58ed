create external schema spectrum from data catalog database 'lake' iam_role default;
