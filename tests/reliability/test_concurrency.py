"""Many `dbops migrate` processes on one database at once: each script applied exactly once, waits bounded and told."""
from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from dbops.engine.locks import make_lock
from dbops.targets import open_target
from tests.pg import PgServer
from tests.reliability.conftest import SCALE
from tests.reliability.harness import (
    SCHEMA,
    TABLE,
    Dbops,
    application_name,
    arm,
    backends,
    disarm,
    install_traps,
    run_lock_holders,
    wait_until,
)
from tests.reliability.warehouse import check_consistent, read_state, write_set
from tests.rig import RigDatabase

LOCKS = ("advisory-psycopg", "table-redshift")


@pytest.fixture(params=LOCKS)
def lock_db(request: pytest.FixtureRequest, pg_server: PgServer) -> RigDatabase:
    """PostgreSQL's advisory lock through psycopg, and Redshift's LOCK dbops_lock through redshift_connector."""
    name = pg_server.create_database("conc")
    install_traps(pg_server.url(name))
    if request.param == "table-redshift":
        url = request.getfixturevalue("bouncer").url(name)
    else:
        url = pg_server.url(name)
    return RigDatabase(name=name, url=url, pg_url=pg_server.url(name), driver=request.param)


def targets(processes: int, versions: int) -> list[str | None]:
    """Each process stops at its own version, so the set is applied in pieces by whoever gets the lock."""
    return [str(versions * (n + 1) // processes) if n < processes - 1 else None for n in range(processes)]


@pytest.mark.stress
def test_processes_started_together_apply_each_migration_exactly_once(lock_db, tmp_path, figure) -> None:
    versions = SCALE.concurrent_migrations - 1
    scripts = write_set(tmp_path / "sql", versions)
    holder = make_lock(open_target(lock_db.url), SCHEMA, TABLE)
    holder.acquire(10)
    processes: list[Dbops] = []
    try:
        for target in targets(SCALE.processes, versions):
            extra = ("--target", target) if target else ()
            processes.append(Dbops(lock_db.url, tmp_path / "sql", "--json", "migrate", "--direct", "--lock-timeout", "300", *extra))
        wait_until(
            lambda: all("waiting for the run lock held by" in p.stderr or not p.running() for p in processes),
            120, "every migrator to wait for the lock", interval=0.05,
        )
    finally:
        holder.release()
    outcomes = [p.finish(300) for p in processes]

    assert [code for code, _, _ in outcomes] == [0] * len(processes), [err for _, _, err in outcomes]
    applied = Counter(a["script"] for _, out, _ in outcomes for a in json.loads(out)["applied"])
    assert applied == Counter({script: 1 for script in scripts})
    state = read_state(lock_db.pg_url)
    assert [rank for rank, _, _ in state.history] == list(range(1, len(scripts) + 1))
    assert sorted(state.applied) == sorted(scripts)
    check_consistent(state, versions)
    for _, _, err in outcomes:
        assert f"waiting for the run lock held by {application_name(os.getpid())} (server pid" in err, err
    assert run_lock_holders(lock_db.pg_url) == []
    figure(f"processes x migrations ({lock_db.driver})", f"{len(processes)} x {len(scripts)}")
    figure(f"applied by each process ({lock_db.driver})", sorted(len(json.loads(out)["applied"]) for _, out, _ in outcomes))


def test_lock_wait_is_bounded_by_lock_timeout_and_names_the_holder(lock_db, tmp_path) -> None:
    folder = tmp_path / "sql"
    write_set(folder, 3)
    arm(lock_db.pg_url, "V2:statement")
    with Dbops(lock_db.url, folder, "migrate", "--direct") as holder:
        wait_until(lambda: any(w == "PgSleep" for _, _, w, _ in backends(lock_db.pg_url, holder.pid)), 60, "the holder to reach V2")
        lock_backend = run_lock_holders(lock_db.pg_url)
        assert len(lock_backend) == 1
        started = time.monotonic()
        with Dbops(lock_db.url, folder, "--json", "migrate", "--direct", "--lock-timeout", "1.5") as waiter:
            code, out, err = waiter.finish(60)
        waited = time.monotonic() - started
        disarm(lock_db.pg_url)
        assert holder.finish(60)[0] == 0
    assert code == 3, err
    document = json.loads(out)  # --json: one document, with the error
    assert document["exit_code"] == 3 and f"error: {document['error']}" in err
    assert "waited 1.5s for the run lock on public.flyway_schema_history" in err
    assert f"held by {application_name(holder.pid)} (server pid {lock_backend[0]}" in err
    assert "--lock-timeout" in err and "Traceback" not in err
    assert waited < 60
    assert [script for _, script, success in read_state(lock_db.pg_url).history if success] == [
        "V1__step_1.sql", "V2__step_2.sql", "V3__step_3.sql", "R__summary.sql"]


def test_a_run_that_waits_for_an_earlier_runs_session_is_bounded_too(pg_url, tmp_path) -> None:
    """The earlier run was killed, but its backend still works: the next run waits for it, within --lock-timeout."""
    folder = tmp_path / "sql"
    write_set(folder, 2)
    install_traps(pg_url)
    arm(pg_url, "V1:after")
    with Dbops(pg_url, folder, "migrate", "--direct") as killed:
        sleeping = wait_until(lambda: [s for s in backends(pg_url, killed.pid) if s[2] == "PgSleep"], 60, "dbops to reach V1")
        orphan = sleeping[0][0]
        killed.kill()
    try:
        with Dbops(pg_url, folder, "migrate", "--direct", "--lock-timeout", "1") as waiter:
            code, _, err = waiter.finish(60)
        assert code == 3, err
        assert "a session of an earlier run is still working" in err
        assert f"{application_name(killed.pid)} (server pid {orphan}" in err
    finally:
        disarm(pg_url)
    with Dbops(pg_url, folder, "migrate", "--direct", "--lock-timeout", "30") as rerun:
        code, _, err = rerun.finish(60)
    assert code == 0, err
    state = read_state(pg_url)
    check_consistent(state, 2)
    assert state.applied == ["V1__step_1.sql", "V2__step_2.sql", "R__summary.sql"]
