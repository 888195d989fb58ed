"""SIGKILL `dbops migrate` (the Dagster path) at random points; the next run makes both stores agree.

The history table is the truth. After a kill and one more `dbops migrate`: every applied script has
exactly one materialization (those the killed run applied but never recorded are recorded late, naming
that run), and no run is left STARTED. On dagster-postgres on the test server (as deployed) and on the
local default (dagster-postgres on the embedded server).
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from dbops.targets.embedded import EmbeddedDatabase
from tests.pg import PgServer
from tests.reliability.conftest import SCALE
from tests.reliability.harness import Dbops, dbops

COUNT = 30
KILLS = {"ci": 2, "full": 10}[SCALE.name]  # per storage: 4 in CI, 20 at full scale
STORAGES = ("postgres", "embedded")


def write_scripts(folder: Path) -> list[str]:
    """COUNT scripts, every 10th a VACUUM (autocommit), each with a little work so kills land inside runs."""
    folder.mkdir(parents=True)
    names = []
    for i in range(1, COUNT + 1):
        name = f"V{i}__step_{i}.sql"
        body = f"create table t_{i} (id int);\ninsert into t_{i} select g from generate_series(1, 2000) g;\n"
        if i % 10 == 0:
            body = f"vacuum t_{i - 1};\n"
        (folder / name).write_text(body)
        names.append(name)
    return names


def history_count(pg_url: str) -> int:
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return conn.execute("select count(*) from flyway_schema_history where success").fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0


def instance_env(storage: str, pg_server: PgServer, home: Path, dbops_home: Path) -> dict[str, str]:
    """DAGSTER_HOME for `storage`: a dagster.yaml on a fresh database of the test server, or dbops's default
    (its own DBOPS_HOME, so its own embedded server and storage database)."""
    home.mkdir()
    if storage == "postgres":
        url = pg_server.url(pg_server.create_database("dagster"))
        (home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: \"{url}\"\ntelemetry:\n  enabled: false\n")
    dbops_home.mkdir()
    return {"DAGSTER_HOME": str(home), "DBOPS_HOME": str(dbops_home)}


@pytest.mark.parametrize("storage", STORAGES)
def test_after_a_kill_the_next_run_records_every_applied_script_once(storage, pg_server, tmp_path, dbops_home, monkeypatch, figure) -> None:
    rng = random.Random(f"dagster-crash-{storage}")
    landed = 0
    late_total = 0
    for n in range(KILLS):
        folder = tmp_path / f"k{n}" / "sql"
        names = write_scripts(folder)
        pg_url = pg_server.url(pg_server.create_database("dcrash"))
        env = instance_env(storage, pg_server, tmp_path / f"k{n}" / "dagster_home", dbops_home / f"k{n}")
        stop_after = rng.randrange(1, COUNT - 1)
        with Dbops(pg_url, folder, "migrate", env=env) as victim:
            deadline = time.monotonic() + 120
            while history_count(pg_url) < stop_after and victim.running() and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.random() * 0.02)
            killed_while_running = victim.running()
            victim.kill()
        landed += killed_while_running
        code, out, err = dbops(pg_url, folder, "migrate", env=env, timeout=300)
        if code == 1 and "dbops repair" in err:  # the kill landed inside the VACUUM script (autocommit)
            assert dbops(pg_url, folder, "repair", env=env)[0] == 0
            code, out, err = dbops(pg_url, folder, "migrate", env=env, timeout=300)
        assert code == 0, err
        assert "Traceback" not in err
        assert history_count(pg_url) == COUNT

        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        monkeypatch.setenv("DBOPS_HOME", env["DBOPS_HOME"])
        with DagsterInstance.get() as instance:
            stuck = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.QUEUED]))
            assert not stuck, [(r.run_id, r.status) for r in stuck]
            for name in names:
                key = AssetKey(["migrations", name[:-4].lower()])
                records = instance.fetch_materializations(key, limit=5).records
                assert len(records) == 1, (name, [r.run_id for r in records])
                metadata = records[0].asset_materialization.metadata
                if "recorded_late" in metadata:
                    late_total += 1
                    assert metadata["applied_in_run"].value  # names the killed run
            runs = instance.get_runs()
            killed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
            if killed_while_running and len(runs) == 2:
                assert "is gone: it was killed, or its storage failed" in (instance.all_logs(killed[0].run_id)[-1].message or "")
        EmbeddedDatabase(dbops_home / f"k{n}" / "pgdata").stop()
    figure(f"kills inside a run ({storage})", landed)
    figure(f"materializations recorded late ({storage})", late_total)
