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
from tests.reliability.harness import Dbops, arm, backends, dbops, disarm, install_traps, wait_until

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


EVENT_TRAP = """
create or replace function trap_event() returns trigger language plpgsql as $$
begin
  perform trap(tg_argv[0]);
  return NEW;
end $$;
create trigger trap_materialization before insert on event_logs
  for each row when (NEW.dagster_event_type = 'ASSET_MATERIALIZATION') execute function trap_event('materialization');
"""


def trapped(storage_url: str) -> int:
    """Sessions of the storage waiting in the materialization trap."""
    with psycopg.connect(storage_url, autocommit=True) as conn:
        return conn.execute("select count(*) from pg_stat_activity where datname = current_database() and wait_event = 'PgSleep'"
                            " and query like 'INSERT INTO event_logs%'").fetchone()[0]


def waits_for_the_lock(pg_url: str, pid: int) -> bool:
    return any("pg_try_advisory_lock" in query for *_, query in backends(pg_url, pid))


def test_a_run_started_while_another_records_its_materializations_records_nothing_late(pg_server, tmp_path, dbops_home, monkeypatch) -> None:
    """The first run has committed its scripts and is storing their materializations (held there by a trap on the
    storage's event_logs); a second `dbops migrate` starts. It reads the history only under the run lock, after the
    first run let go of it, so it finds every script recorded: one materialization each, none recorded late."""
    folder = tmp_path / "sql"
    folder.mkdir()
    names = [f"V{i}__step_{i}.sql" for i in range(1, 6)]
    for i, name in enumerate(names, start=1):
        (folder / name).write_text(f"create table t_{i} (id int);\n")
    pg_url = pg_server.url(pg_server.create_database("dconc"))
    storage_db = pg_server.create_database("dagster")
    storage_url = pg_server.url(storage_db)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: \"{storage_url}\"\ntelemetry:\n  enabled: false\n")
    env = {"DAGSTER_HOME": str(home), "DBOPS_HOME": str(dbops_home)}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:  # creates the storage's tables
        instance.get_runs(limit=1)
    install_traps(storage_url)
    with psycopg.connect(storage_url, autocommit=True) as conn:
        conn.execute(EVENT_TRAP)
    arm(storage_url, "materialization")
    try:
        with Dbops(pg_url, folder, "migrate", env=env) as first:
            wait_until(lambda: history_count(pg_url) == len(names) and trapped(storage_url) == 1, 120,
                       "the first run to commit its scripts and wait in the trap")
            with Dbops(pg_url, folder, "migrate", env=env) as second:
                # Read under the lock, the second run waits for it; read before the lock, it records late and is trapped too.
                wait_until(lambda: waits_for_the_lock(pg_url, second.pid) or trapped(storage_url) == 2 or not second.running(),
                           120, "the second run to wait for the lock or in the trap")
                disarm(storage_url)
                outcomes = [first.finish(120), second.finish(120)]
    finally:
        disarm(storage_url)
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    with DagsterInstance.get() as instance:
        for name in names:
            records = instance.fetch_materializations(AssetKey(["migrations", name[:-4].lower()]), limit=5).records
            assert len(records) == 1, (name, [(r.run_id, "recorded_late" in r.asset_materialization.metadata) for r in records])
            assert "recorded_late" not in records[0].asset_materialization.metadata
