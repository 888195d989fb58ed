"""The three drivers side by side on the same migrations: wall time and round trips per migration.

Used by bench/engine.py (its second table). psycopg talks to the test server directly, redshift_connector
through pgbouncer (the test rig), the Data API target through tests/dataapi.py's local endpoint on the same
server. Round trips: for the Data API, the HTTP calls the endpoint answered (submit, DescribeStatement polls,
GetStatementResult); for the connection drivers, the session calls that each cost one round trip (execute,
query, a transaction or batch sent as one query, commit).
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.targets import open_target
from dbops.targets.base import Target
from tests.pg import PgServer

COUNTED = ("execute", "query", "run_transaction", "run_batch", "run_script", "commit")


class Counting:
    """A session whose round-trip calls are counted into `counter[0]`."""

    def __init__(self, session: Any, counter: list[int]) -> None:
        self._session, self._counter = session, counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._session, name)
        if name in COUNTED and callable(attribute):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self._counter[0] += 1
                return attribute(*args, **kwargs)
            return counted
        return attribute

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._session, name, value)


def counted_target(target: Target, counter: list[int]) -> Target:
    connect: Callable[[], Any] = target.connect
    target.connect = lambda: Counting(connect(), counter)  # type: ignore[method-assign]
    return target


def run(url: str, folder: Path, calls: Callable[[], int] | None = None) -> tuple[float, int]:
    """(seconds, round trips) of one migrate of `folder` to `url`."""
    counter = [0]
    target = open_target(url)
    if calls is None:
        target = counted_target(target, counter)
    before = calls() if calls else 0
    started = time.perf_counter()
    applied = sum(1 for _ in Engine(target, Settings(locations=[str(folder)])).migrate())
    elapsed = time.perf_counter() - started
    assert applied, "nothing applied"
    return elapsed, (calls() - before) if calls else counter[0]


def compare(server: PgServer, folder: Path, n: int) -> None:
    """Print the drivers' table for `n` migrations in `folder`."""
    from tests.dataapi import DataApiEndpoint
    from tests.rig import start_bouncer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    rows: list[tuple[str, float, int]] = []
    rows.append(("psycopg", *run(server.url(server.create_database("drv")), folder)))
    if shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists():
        bouncer = start_bouncer(server)
        try:
            rows.append(("redshift_connector", *run(bouncer.url(server.create_database("drv")), folder)))
        finally:
            bouncer.stop()
    endpoint = DataApiEndpoint(server)
    try:
        rows.append(("Data API (local)", *run(endpoint.url(server.create_database("drv")), folder, lambda: len(endpoint.calls))))
    finally:
        endpoint.stop()
    base = rows[0][1]
    print(f"\n{'driver':>20} {'wall (s)':>9} {'x psycopg':>10} {'round trips':>12} {'per migration':>14}")
    for name, seconds, trips in rows:
        print(f"{name:>20} {seconds:>9.2f} {seconds / base:>10.2f} {trips:>12} {trips / n:>14.2f}")
    print("Data API round trips are HTTP calls to a local endpoint (no network latency): against the real service each "
          "costs tens of milliseconds, so its wall time there is about round trips x that latency")
