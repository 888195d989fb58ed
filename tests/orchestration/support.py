"""Helpers for the Dagster layer's tests: definitions over a test folder and database, event digests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from dagster import AssetKey, DagsterEventType, Definitions

from dbops.orchestration.build import build_definitions
from dbops.orchestration.resource import DbopsResource


def execute_request(job: Any, request: Any, instance: Any, **tags: str) -> Any:
    """Run a sensor's RunRequest as the daemon does: its asset and check selection (the whole job when it has none),
    partition, tags and run key."""
    if request.asset_selection is not None:
        job = job.get_subset(asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys or ()))
    tags = {**{k: v for k, v in request.tags.items() if k != "dagster/partition"}, "dagster/run_key": request.run_key, **tags}
    return job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=tags, raise_on_error=False)


def definitions(folder: Path, url: str, **resource: Any) -> Definitions:
    """The code location for the scripts in `folder`, migrating the database at `url` (no sensors)."""
    return build_definitions(DbopsResource(url=url, locations=[str(folder)], **resource), with_sensors=False)


def key(name: str) -> AssetKey:
    return AssetKey(["migrations", name])


def materializations(events: list[Any]) -> dict[AssetKey, dict[str, Any]]:
    """Asset key → metadata values of each materialization among `events`, in order."""
    found: dict[AssetKey, dict[str, Any]] = {}
    for event in events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            found[materialization.asset_key] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return found


def check_results(events: list[Any]) -> dict[tuple[str, str], Any]:
    """(asset name, check name) → the evaluation, for each asset check evaluated among `events`."""
    found = {}
    for event in events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            found[(data.asset_key.path[-1], data.check_name)] = data
    return found


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()
