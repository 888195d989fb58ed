"""The reliability suites on the Data API target (tests/dataapi.py's endpoint): kill -9, concurrent migrators, faults.

On the Data API a killed migrator's statement goes on running in the service, and its lease stays until it
expires. What keeps the history truthful is the batch: a script commits with its rows or not at all, and every
batch first takes `LOCK dbops_lock` and checks the lease is still its own, so a takeover waits for a killed
run's batch to end and a run that lost its lease cannot commit.
"""
from __future__ import annotations

import json
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.targets import open_target
from dbops.targets.base import ConnectionLost
from tests.dataapi import ACTIVE, DataApiEndpoint
from tests.pg import PgServer
from tests.reliability.conftest import SCALE
from tests.reliability.harness import TABLE, Dbops, arm, connect, dbops, disarm, install_traps, trap_table, wait_until
from tests.reliability.test_crash import COUNT, TRIGGERED, WORK, script_of
from tests.reliability.warehouse import check_consistent, read_state, write_set
from tests.rig import RigDatabase

LEASE = "2"  # seconds: a killed run's lease expires quickly here
KINDS = ("statement", "after", "history", "audit", "commit", "time")


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # inherited by the dbops processes the suite starts
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def fresh_db(pg_server: PgServer, dataapi: DataApiEndpoint, prefix: str = "da") -> RigDatabase:
    name = pg_server.create_database(prefix)
    return RigDatabase(name=name, url=dataapi.url(name, lease_seconds=LEASE), pg_url=pg_server.url(name), driver="redshift-data")


def trap_label(kind: str, index: int) -> str:
    if kind in TRIGGERED:
        return f"{kind}:{script_of(index)}"
    if index > COUNT:
        return "R:statement"  # the repeatable script has one trap (tests/reliability/warehouse.py's SUMMARY)
    return f"V{index}:{'after' if kind == 'after' else 'statement'}"


def service_sleeping(pg_url: str) -> bool:
    """A statement the endpoint runs for this database sits in an armed trap."""
    with connect(pg_url) as conn:
        return bool(conn.execute(
            "select 1 from pg_stat_activity where application_name = 'redshift-data' and datname = current_database() "
            "and wait_event = 'PgSleep'"
        ).fetchall())


def statements_done(dataapi: DataApiEndpoint, database: str) -> bool:
    return not [s for s in list(dataapi.statements.values()) if s.status in ACTIVE and s.request.get("Database") == database]


def kill_at(db: RigDatabase, folder: Path, kind: str, index: int, instant: float) -> str:
    with Dbops(db.url, folder, "migrate", "--direct") as process:
        if kind == "time":
            try:
                process.process.wait(instant)
            except subprocess.TimeoutExpired:
                pass
            where = "timed: after the run ended" if not process.running() else "timed"
        else:
            wait_until(lambda: service_sleeping(db.pg_url) or not process.running(), 60, f"dbops to reach {trap_label(kind, index)}")
            assert process.running(), process.stderr
            where = kind
        process.kill()
    return where


def rerun_after_kill(db: RigDatabase, dataapi: DataApiEndpoint, folder: Path, expected: list[str]) -> None:
    """The killed run's batch may still sit in its trap: the rerun takes the expired lease only once it has ended."""
    check_consistent(read_state(db.pg_url), COUNT)
    with Dbops(db.url, folder, "--json", "migrate", "--direct", "--lock-timeout", "60") as rerun:
        time.sleep(float(LEASE) + 0.5)  # past the killed run's lease: the rerun is taking it over, or waits for LOCK
        check_consistent(read_state(db.pg_url), COUNT)
        disarm(db.pg_url)
        code, out, err = rerun.finish(120)
    assert code == 0, f"rerun failed ({code}):\n{err}"
    state = read_state(db.pg_url)
    check_consistent(state, COUNT)
    assert state.applied == expected
    wait_until(lambda: statements_done(dataapi, db.name), 30, "the service's statements to end")


@pytest.mark.stress
def test_sigkill_at_many_points_leaves_history_matching_the_database(pg_server, dataapi, tmp_path, figure) -> None:
    folder = tmp_path / "sql"
    expected = write_set(folder, COUNT, work=WORK)
    first = fresh_db(pg_server, dataapi)
    install_traps(first.pg_url)
    started = time.monotonic()
    code, _, err = dbops(first.url, folder, "migrate", "--direct")
    assert code == 0, err
    duration = time.monotonic() - started
    rng = random.Random(17)
    landed: Counter = Counter()
    total = max(20, SCALE.kill_points)  # issue 17's acceptance: 20 kill points through the Data API, in CI too
    for n in range(total):
        kind, index = KINDS[n % len(KINDS)], 1 + ((n * (COUNT + 1)) // total + rng.randrange(3)) % (COUNT + 1)
        db = fresh_db(pg_server, dataapi)
        install_traps(db.pg_url)
        if kind in TRIGGERED:
            with Engine(open_target(db.pg_url), Settings(locations=[str(folder)])).locked():
                pass
            table, event, deferred = TRIGGERED[kind]
            trap_table(db.pg_url, table, event, kind, deferred=deferred)
        if kind != "time":
            arm(db.pg_url, trap_label(kind, index))
        landed[kill_at(db, folder, kind, index, rng.uniform(0.05, 1.0) * duration)] += 1
        rerun_after_kill(db, dataapi, folder, expected)
        with pg_server.admin() as conn:
            conn.execute(f'drop database "{db.name}" with (force)')
    figure("kill points survived (redshift-data)", total)
    figure("where the kills landed (redshift-data)", dict(sorted(landed.items())))


def test_concurrent_migrators_apply_each_script_once(pg_server, dataapi, tmp_path, figure) -> None:
    folder = tmp_path / "sql"
    expected = write_set(folder, COUNT)
    db = fresh_db(pg_server, dataapi, "daconc")
    install_traps(db.pg_url)
    processes = [Dbops(db.url, folder, "--json", "migrate", "--direct", "--lock-timeout", "120") for _ in range(SCALE.processes)]
    outcomes = [p.finish(180) for p in processes]
    assert all(code == 0 for code, _, _ in outcomes), [err for _, _, err in outcomes]
    applied = [a["script"] for _, out, _ in outcomes for a in json.loads(out)["applied"]]
    assert sorted(applied) == sorted(expected)  # each script by exactly one of them
    state = read_state(db.pg_url)
    check_consistent(state, COUNT)
    assert state.applied == expected
    code, out, err = dbops(db.url, folder, "migrate", "--direct")
    assert code == 0 and "Nothing to migrate" in out, err
    figure("concurrent migrators (redshift-data)", SCALE.processes)


def test_a_held_lease_makes_the_next_run_wait_and_time_out_naming_the_holder(pg_server, dataapi, tmp_path) -> None:
    folder = tmp_path / "sql"
    write_set(folder, 3)
    db = fresh_db(pg_server, dataapi, "dalease")
    install_traps(db.pg_url)
    arm(db.pg_url, "V2:statement")
    with Dbops(db.url, folder, "migrate", "--direct") as holder:
        wait_until(lambda: service_sleeping(db.pg_url), 60, "the holder to reach its trap")
        code, _, err = dbops(db.url, folder, "migrate", "--direct", "--lock-timeout", "1")
        assert code == 3 and "waited 1s for the run lock" in err and "dbops " in err and f":{holder.pid} run " in err, err
        time.sleep(float(LEASE) * 1.5)  # the holder renews its lease while it lives: still held past its length
        code, _, err = dbops(db.url, folder, "migrate", "--direct", "--lock-timeout", "1")
        assert code == 3 and "waited 1s for the run lock" in err
        disarm(db.pg_url)
        assert holder.finish(60)[0] == 0
    with connect(db.pg_url) as conn:
        assert conn.execute(f"select count(*) from {TABLE}").fetchone() == (4,)


def test_a_run_whose_lease_was_taken_over_cannot_commit(pg_server, dataapi, tmp_path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "V1__orders.sql").write_text("create table orders (id int);\n")
    (folder / "V2__vacuum.sql").write_text("vacuum orders;\n")
    (folder / "V3__lines.sql").write_text("create table lines (id int);\n")
    db = fresh_db(pg_server, dataapi, "dafence")
    results = Engine(open_target(db.url), Settings(locations=[str(folder)])).migrate()
    assert next(results).script == "V1__orders.sql"
    with connect(db.pg_url) as conn:  # another migrator took the lease over (after a long pause of this one, say)
        conn.execute("update dbops_lease set owner = 'dbops other-host:1 run 000000000000'")
    with pytest.raises(ConnectionLost, match="lost the run lock"):
        list(results)
    with connect(db.pg_url) as conn:
        assert conn.execute(f"select script from {TABLE}").fetchall() == [("V1__orders.sql",)]
        assert conn.execute("select script, status from dbops_audit").fetchall() == [("V1__orders.sql", "success")]


def test_the_service_going_away_mid_run_exits_3_and_a_rerun_completes(pg_server, tmp_path) -> None:
    folder = tmp_path / "sql"
    expected = write_set(folder, 6)
    endpoint = DataApiEndpoint(pg_server)
    name = pg_server.create_database("dadown")
    url = endpoint.url(name, lease_seconds=LEASE)
    pg_url = pg_server.url(name)
    install_traps(pg_url)
    arm(pg_url, "V3:after")
    with Dbops(url, folder, "migrate", "--direct") as process:
        wait_until(lambda: service_sleeping(pg_url), 60, "dbops to reach V3")
        endpoint.httpd.shutdown()
        endpoint.httpd.server_close()
        disarm(pg_url)
        code, _, err = process.finish(120)
    assert code == 3 and "cannot reach the Data API" in err and "endpoint_url" not in err.split("cannot reach")[0], err
    state = read_state(pg_url)
    check_consistent(state, 6)
    again = DataApiEndpoint(pg_server)
    try:
        code, _, err = dbops(again.url(name, lease_seconds=LEASE), folder, "migrate", "--direct", "--lock-timeout", "30")
        assert code == 0, err
        assert read_state(pg_url).applied == expected
    finally:
        again.stop()
        endpoint.stop()
