"""SIGKILL `dbops migrate --direct` at many points of a 50-migration run; the database must stay truthful.

Kill points: inside a statement, between the statements and the history row, inside the history and audit
inserts, inside COMMIT, while waiting for the run lock, and at random instants. After every kill the history
table matches the objects that exist, no run lock is left behind, and a rerun finishes the set.
"""
from __future__ import annotations

import json
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from dbops.cli import main
from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.targets import open_target
from tests.pg import PgServer
from tests.reliability.conftest import SCALE
from tests.reliability.harness import (
    TABLE,
    Dbops,
    arm,
    backends,
    connect,
    dbops,
    dbops_sessions,
    disarm,
    install_traps,
    run_lock_holders,
    trap_table,
    wait_until,
)
from tests.reliability.warehouse import check_consistent, read_state, step_name, write_set
from tests.rig import RigDatabase

COUNT = 49  # versioned scripts; with the repeatable view, 50 migrations
KINDS = ("statement", "after", "history", "audit", "commit", "lock", "time")
TRIGGERED = {"history": (TABLE, "INSERT", False), "audit": ("dbops_audit", "INSERT", False), "commit": (TABLE, "INSERT", True)}
DRIVERS = ("psycopg", "redshift")
WORK = 30_000  # rows of busywork per script: a few milliseconds, so timed kills land inside scripts


def fresh_db(pg_server: PgServer, driver: str, request: pytest.FixtureRequest) -> RigDatabase:
    name = pg_server.create_database("crash")
    url = pg_server.url(name) if driver == "psycopg" else request.getfixturevalue("bouncer").url(name)
    return RigDatabase(name=name, url=url, pg_url=pg_server.url(name), driver=driver)


def kill_points(total: int, offset: int, seed: int) -> list[tuple[str, int]]:
    """`total` (kind, script index) pairs: every kind in turn, scripts spread over the whole set (COUNT+1 is R)."""
    rng = random.Random(seed)
    points = []
    for n in range(total):
        kind = KINDS[(n + offset) % len(KINDS)]
        start = (n * (COUNT + 1)) // total
        points.append((kind, 1 + (start + rng.randrange(3)) % (COUNT + 1)))
    return points


def script_of(index: int) -> str:
    return step_name(index) if index <= COUNT else "R__summary.sql"


def trap_label(kind: str, index: int) -> str:
    if kind in TRIGGERED:
        return f"{kind}:{script_of(index)}"
    return f"{'R' if index > COUNT else f'V{index}'}:{'after' if kind == 'after' else 'statement'}"


def prepare(db: RigDatabase, folder: Path, kind: str, index: int) -> None:
    install_traps(db.pg_url)
    if kind in TRIGGERED:
        with Engine(open_target(db.pg_url), Settings(locations=[str(folder)])).locked():
            pass  # the history and audit tables, so the trap triggers can sit on them
        table, event, deferred = TRIGGERED[kind]
        trap_table(db.pg_url, table, event, kind, deferred=deferred)
    if kind != "time":
        arm(db.pg_url, trap_label(kind, index))


def trapped(db: RigDatabase, process: Dbops) -> list[tuple]:
    """The process's sessions once one of them sleeps in the armed trap ([] before that)."""
    sessions = backends(db.pg_url, process.pid)
    return sessions if any(wait == "PgSleep" for _, _, wait, _ in sessions) else []


TRAPPED_AT = {
    "statement": "in a statement",
    "after": "between the statements and the history row",
    "history": "in the history insert",
    "audit": "in the audit insert",
    "commit": "in COMMIT",
}


def phase(kind: str, sessions: list[tuple]) -> str:
    """Where a kill landed: the trap's place, or for a timed kill what the process's sessions were doing."""
    if kind in TRAPPED_AT:
        return TRAPPED_AT[kind]
    if not sessions:
        return "timed: before connecting"
    work = [s for s in sessions if "pg_try_advisory_lock" not in s[3] and "lock table" not in s[3].lower()]
    if not work:
        return "timed: taking the run lock"
    return "timed: between scripts" if work[-1][1].startswith("idle") else "timed: inside a script"


def kill_at(db: RigDatabase, folder: Path, kind: str, index: int, instant: float) -> tuple[str, set[int]]:
    """Start a migrate and SIGKILL it at the kill point (`instant` seconds in, for timed kills); returns where it
    landed and the sessions it had."""
    with Dbops(db.url, folder, "migrate", "--direct") as process:
        if kind == "time":
            try:
                process.process.wait(instant)
            except subprocess.TimeoutExpired:
                pass
            sessions = backends(db.pg_url, process.pid)
        else:
            label = trap_label(kind, index)
            sessions = wait_until(lambda: trapped(db, process) or not process.running(), 60, f"dbops to reach {label}")
            assert process.running(), f"dbops ended before the trap {label}:\n{process.stderr}"
        finished = not process.running()
        process.kill()
    return ("timed: after the run ended" if finished else phase(kind, sessions)), {s[0] for s in sessions}


def kill_while_waiting_for_the_lock(db: RigDatabase, folder: Path, index: int) -> str:
    """A holder sits in a trap; a second migrator waits for the lock and is killed; the holder then finishes."""
    with Dbops(db.url, folder, "migrate", "--direct") as holder:
        wait_until(lambda: trapped(db, holder), 60, "the holder to reach its trap")
        held_by = run_lock_holders(db.pg_url)
        with Dbops(db.url, folder, "migrate", "--direct", "--lock-timeout", "60") as waiter:
            wait_until(lambda: "waiting for the run lock" in waiter.stderr or not waiter.running(), 60, "the waiter to wait")
            assert waiter.running(), waiter.stderr
            waiter_sessions = [s[0] for s in backends(db.pg_url, waiter.pid)]
            waiter.kill()
        wait_until(lambda: not set(waiter_sessions) & {s[0] for s in dbops_sessions(db.pg_url)}, 10, "the waiter's sessions to end")
        assert run_lock_holders(db.pg_url) == held_by, "killing a waiter changed who holds the run lock"
        disarm(db.pg_url)
        code, _, err = holder.finish(60)
        assert code == 0, err
    return "waiting for the lock"


def after_kill(db: RigDatabase, folder: Path, killed: set[int], expected: list[str], orphan_trapped: bool) -> None:
    """The checks every kill must pass: consistent now, lock free, a rerun completes and applies each script once.

    The rerun starts while the killed run's orphaned backend may still sit in its trap (as a long statement would
    on a real server); the trap is let go only once the rerun holds the run lock, and the rerun must wait for
    that backend instead of applying the script a second time.
    """
    check_consistent(read_state(db.pg_url), COUNT)
    wait_until(lambda: not set(run_lock_holders(db.pg_url)) & killed, 10, "the killed run's lock to be released")
    with Dbops(db.url, folder, "--json", "migrate", "--direct", "--lock-timeout", "60") as rerun:
        wait_until(lambda: not rerun.running() or set(run_lock_holders(db.pg_url)) - killed, 30, "the rerun to take the run lock")
        if orphan_trapped:
            wait_until(lambda: "waiting for a session of an earlier run to end: dbops " in rerun.stderr or not rerun.running(),
                       10, "the rerun to wait for the orphaned session")
        check_consistent(read_state(db.pg_url), COUNT)
        disarm(db.pg_url)
        code, out, err = rerun.finish(60)
    assert code == 0, f"rerun failed ({code}):\n{err}"
    if orphan_trapped:
        assert "waiting for a session of an earlier run to end: dbops " in err
    state = read_state(db.pg_url)
    check_consistent(state, COUNT)
    assert state.applied == expected
    assert set(state.applied) >= {a["script"] for a in json.loads(out)["applied"]}
    wait_until(lambda: not dbops_sessions(db.pg_url) and not run_lock_holders(db.pg_url), 15, "every dbops session to end")


def full_run_seconds(pg_server: PgServer, driver: str, request: pytest.FixtureRequest, folder: Path) -> float:
    """How long one uninterrupted run takes here, so timed kills spread over it."""
    db = fresh_db(pg_server, driver, request)
    install_traps(db.pg_url)
    started = time.monotonic()
    code, _, err = dbops(db.url, folder, "migrate", "--direct")
    assert code == 0, err
    return time.monotonic() - started


@pytest.mark.stress
@pytest.mark.parametrize("driver", DRIVERS)
def test_sigkill_at_every_kind_of_point_leaves_history_matching_the_database(driver, pg_server, tmp_path, request, figure) -> None:
    folder = tmp_path / "sql"
    expected = write_set(folder, COUNT, work=WORK)
    duration = full_run_seconds(pg_server, driver, request, folder)
    points = kill_points(max(1, SCALE.kill_points // len(DRIVERS)), offset=DRIVERS.index(driver) * 6, seed=len(driver))
    rng = random.Random(7)
    landed: Counter = Counter()
    for kind, index in points:
        db = fresh_db(pg_server, driver, request)
        prepare(db, folder, kind, index)
        killed: set[int] = set()
        if kind == "lock":
            landed[kill_while_waiting_for_the_lock(db, folder, index)] += 1
        else:
            where, killed = kill_at(db, folder, kind, index, rng.uniform(0.05, 1.0) * duration)
            landed[where] += 1
        after_kill(db, folder, killed, expected, orphan_trapped=kind not in ("time", "lock"))
        with pg_server.admin() as conn:  # also closes the sessions pgbouncer pools for it (the server allows 100)
            conn.execute(f'drop database "{db.name}" with (force)')
    figure(f"kill points survived ({driver})", len(points))
    figure(f"where the kills landed ({driver})", dict(sorted(landed.items())))


MAINTENANCE = "V2__maintenance.sql"
NON_TRANSACTIONAL = {
    "V1__orders.sql": "create table orders (id int primary key, total numeric(10, 2));\n"
                      "insert into orders select g, g from generate_series(1, 100) g;\n",
    MAINTENANCE: "select trap('NT:before');\nvacuum orders;\nselect trap('NT:after');\nanalyze orders;\n",
    "V3__customers.sql": "create table customers (id int);\n",
}
# Where a kill can land in a script that runs in autocommit: before/after its VACUUM, in the insert of its
# "failed" history row or of its "started" audit row (one transaction), in the update that marks it done or in
# the update of its audit row to the outcome (one transaction).
NT_POINTS = {
    "before": "NT:before",
    "after": "NT:after",
    "record": f"history:{MAINTENANCE}",
    "audit": f"audit:{MAINTENANCE}",
    "success": f"update:{MAINTENANCE}",
    "outcome": f"outcome:{MAINTENANCE}",
}
UNRECORDED = ("record", "audit")  # killed before the attempt's first rows committed: nothing of it ran yet


def cli(capsys: pytest.CaptureFixture, url: str, folder: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--url", url, "--locations", str(folder), *args])
    out, err = capsys.readouterr()
    return code, out, err


def state_of(capsys: pytest.CaptureFixture, db: RigDatabase, folder: Path, script: str) -> str:
    code, out, err = cli(capsys, db.url, folder, "--json", "info")
    assert code == 0, err
    return next(m["state"] for m in json.loads(out)["migrations"] if m["script"] == script)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("point", sorted(NT_POINTS))
def test_sigkill_in_a_non_transactional_script_is_reported_and_repair_recovers(driver, point, pg_server, tmp_path, request, capsys) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    for name, text in NON_TRANSACTIONAL.items():
        (folder / name).write_text(text)
    db = fresh_db(pg_server, driver, request)
    install_traps(db.pg_url)
    with Engine(open_target(db.pg_url), Settings(locations=[str(folder)])).locked():
        pass
    trap_table(db.pg_url, TABLE, "INSERT", "history")
    trap_table(db.pg_url, TABLE, "UPDATE", "update")
    trap_table(db.pg_url, "dbops_audit", "INSERT", "audit")
    trap_table(db.pg_url, "dbops_audit", "UPDATE", "outcome")
    arm(db.pg_url, NT_POINTS[point])
    with Dbops(db.url, folder, "migrate", "--direct", "--commit", "c0ffee01") as process:
        wait_until(lambda: trapped(db, process) or not process.running(), 60, f"dbops to reach {NT_POINTS[point]}")
        assert process.running(), process.stderr
        process.kill()

    reported = state_of(capsys, db, folder, MAINTENANCE)
    assert reported == ("Pending" if point in UNRECORDED else "Failed")
    if reported == "Failed":
        code, _, err = cli(capsys, db.url, folder, "validate")
        assert code == 1 and MAINTENANCE in err + _ and "dbops repair" in err + _
        assert audit_of(db, MAINTENANCE) == [("started", "c0ffee01")]
    disarm(db.pg_url)
    wait_until(lambda: not dbops_sessions(db.pg_url), 15, "the killed run's sessions to end")

    after_orphan = state_of(capsys, db, folder, MAINTENANCE)
    assert after_orphan in (("Pending", "Failed") if point in UNRECORDED else ("Failed", "Success"))
    state = read_state(db.pg_url)
    assert all(state.audit[s] == 1 for s in state.applied), f"a script marked done has no audit row: {state.audit} {state.applied}"
    # Each attempt that reached the database has its row: the killed one's outcome, or "started" until a run finds it.
    killed_attempt = {"Pending": [], "Failed": [("started", "c0ffee01")], "Success": [("success", "c0ffee01")]}[after_orphan]
    assert audit_of(db, MAINTENANCE) == killed_attempt
    if after_orphan == "Failed":
        code, _, err = cli(capsys, db.url, folder, "migrate", "--direct")
        assert code == 1 and f"{MAINTENANCE} failed" in err and "dbops repair" in err
        assert "marked 1 attempt(s) that an earlier run left unfinished as interrupted" in err
        killed_attempt = [("interrupted", "c0ffee01")]
        assert audit_of(db, MAINTENANCE) == killed_attempt
        code, out, err = cli(capsys, db.url, folder, "repair")
        assert code == 0 and f"removed failed row {MAINTENANCE}" in out, err
    code, out, err = cli(capsys, db.url, folder, "--json", "migrate", "--direct", "--commit", "c0ffee02")
    assert code == 0, err
    state = read_state(db.pg_url)
    assert state.history and [h[1:] for h in state.history] == [(name, True) for name in NON_TRANSACTIONAL]
    assert state.audit == Counter({name: 1 for name in NON_TRANSACTIONAL})
    reapplied = [("success", "c0ffee02")] if after_orphan != "Success" else []
    assert audit_of(db, MAINTENANCE) == killed_attempt + reapplied


def audit_of(db: RigDatabase, script: str) -> list[tuple[str, str]]:
    """(status, commit id) of each audit row of `script`, oldest first."""
    with connect(db.pg_url) as conn:
        return conn.execute(
            "select status, commit_id from dbops_audit where script = %s order by started_at", (script,)
        ).fetchall()


# Issue 13's reproducer: a script outside a transaction, killed in the middle of its pg_sleep.
INTERRUPTED_SCRIPT = "V1__two_tables.sql"
INTERRUPTED_SET = {
    INTERRUPTED_SCRIPT: "create table first_half (id int);\nselect pg_sleep(6);\ncreate table second_half (id int);\n",
    f"{INTERRUPTED_SCRIPT}.conf": "executeInTransaction=false\n",
}


def sleeping(db: RigDatabase, process: Dbops) -> bool:
    return any(wait == "PgSleep" and "pg_sleep(6)" in query for _, _, wait, query in backends(db.pg_url, process.pid))


@pytest.mark.parametrize("driver", DRIVERS)
def test_sigkill_inside_a_non_transactional_script_is_audited_with_its_commit(driver, pg_server, tmp_path, request, capsys) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    for name, text in INTERRUPTED_SET.items():
        (folder / name).write_text(text)
    db = fresh_db(pg_server, driver, request)
    with Dbops(db.url, folder, "migrate", "--direct", "--commit", "c0ffee01") as process:
        wait_until(lambda: sleeping(db, process) or not process.running(), 60, "dbops to sleep in the script")
        assert process.running(), process.stderr
        process.kill()

    assert audit_of(db, INTERRUPTED_SCRIPT) == [("started", "c0ffee01")]
    code, out, err = cli(capsys, db.url, folder, "--json", "info")
    assert code == 0, err
    entry = json.loads(out)["migrations"][0]
    assert entry["state"] == "Failed"
    assert (entry["last_failure"]["status"], entry["last_failure"]["commit"]) == ("started", "c0ffee01")

    code, out, err = cli(capsys, db.url, folder, "migrate", "--direct", "--lock-timeout", "60")
    assert code == 1 and f"{INTERRUPTED_SCRIPT} failed" in err and "dbops repair" in err
    assert "marked 1 attempt(s) that an earlier run left unfinished as interrupted" in err
    with connect(db.pg_url) as conn:
        (error,) = conn.execute("select error from dbops_audit where status = 'interrupted'").fetchone()
        assert conn.execute("select to_regclass('first_half') is not null, to_regclass('second_half') is not null").fetchone() == (True, False)
    assert error.startswith("interrupted: the run ended before it recorded this attempt's outcome")
    code, out, err = cli(capsys, db.url, folder, "info")
    assert code == 0 and "interrupted" in out and "c0ffee01" in out, out

    code, out, err = cli(capsys, db.url, folder, "repair")
    assert code == 0 and f"removed failed row {INTERRUPTED_SCRIPT}" in out, err
    assert audit_of(db, INTERRUPTED_SCRIPT) == [("interrupted", "c0ffee01")]
    with connect(db.pg_url) as conn:  # what the user does before migrating again: undo the half that ran
        conn.execute("drop table first_half")
    code, out, err = cli(capsys, db.url, folder, "migrate", "--direct", "--commit", "c0ffee02")
    assert code == 0, err
    assert audit_of(db, INTERRUPTED_SCRIPT) == [("interrupted", "c0ffee01"), ("success", "c0ffee02")]
    code, out, err = cli(capsys, db.url, folder, "--json", "info")
    assert json.loads(out)["migrations"][0]["last_failure"] is None


def killed_dagster_migrate_in_a_sleep(pg_server, tmp_path, request, monkeypatch):
    """A Dagster-path `dbops migrate --commit c0ffee01` killed while its non-transactional script sleeps."""
    folder = tmp_path / "sql"
    folder.mkdir()
    for name, text in INTERRUPTED_SET.items():
        (folder / name).write_text(text)
    db = fresh_db(pg_server, "psycopg", request)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the local instance, in DBOPS_HOME
    with Dbops(db.url, folder, "migrate", "--commit", "c0ffee01") as process:
        wait_until(lambda: sleeping(db, process) or not process.running(), 120, "the Dagster run to sleep in the script")
        assert process.running(), process.stderr
        process.kill()
    return folder, db


def test_sigkill_of_a_dagster_run_inside_a_non_transactional_script_is_audited(
    pg_server, tmp_path, request, capsys, dbops_home, monkeypatch
) -> None:
    folder, db = killed_dagster_migrate_in_a_sleep(pg_server, tmp_path, request, monkeypatch)
    with connect(db.pg_url) as conn:
        (run_id, source) = conn.execute("select run_id, source from dbops_audit").fetchone()
    assert audit_of(db, INTERRUPTED_SCRIPT) == [("started", "c0ffee01")] and source == "cli"

    code, out, err = cli(capsys, db.url, folder, "repair")
    assert code == 0 and f"removed failed row {INTERRUPTED_SCRIPT}" in out, err
    assert audit_of(db, INTERRUPTED_SCRIPT) == [("interrupted", "c0ffee01")]
    code, out, err = cli(capsys, db.url, folder, "--json", "info")
    failure = json.loads(out)["migrations"][0]["last_failure"]
    assert (failure["status"], failure["run_id"], failure["commit"]) == ("interrupted", run_id, "c0ffee01")


def test_the_next_dagster_migrate_after_a_kill_marks_the_run_failed_and_the_attempt_interrupted(
    pg_server, tmp_path, request, capsys, dbops_home, monkeypatch
) -> None:
    """The next `dbops migrate` (Dagster path) refuses the partly applied script as --direct does, and first cleans up
    what the killed one left: its Dagster run is marked failed and its audit row interrupted."""
    folder, db = killed_dagster_migrate_in_a_sleep(pg_server, tmp_path, request, monkeypatch)
    with connect(db.pg_url) as conn:
        (run_id,) = conn.execute("select run_id from dbops_audit").fetchone()
    assert audit_of(db, INTERRUPTED_SCRIPT) == [("started", "c0ffee01")]

    code, out, err = cli(capsys, db.url, folder, "migrate", "--lock-timeout", "60")
    assert code == 1 and "validation failed" in err and INTERRUPTED_SCRIPT in err and "dbops repair" in err, err
    assert f"Dagster run {run_id} was left STARTED by a dbops migrate that is gone: marked failed" in err
    assert "marked 1 attempt(s) that an earlier run left unfinished as interrupted" in err
    assert "Traceback" not in err
    assert audit_of(db, INTERRUPTED_SCRIPT) == [("interrupted", "c0ffee01")]
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.FAILURE
        assert len(instance.get_runs()) == 1  # a run that fails validation starts no run of its own
