"""Everything that imports dagster: assets, checks, jobs, schedule, sensors, the resource and the CLI launcher."""
