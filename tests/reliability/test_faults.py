"""Connection faults mid-run: a backend terminated, the server or the pooler gone, a statement over its timeout.

Each ends with exit 3 (connection) or 1 (statement) and a message naming the script; nothing is recorded that
did not happen; a rerun completes the set.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.pg import PgServer, start_server
from tests.reliability.harness import (
    Dbops,
    arm,
    backends,
    connect,
    dbops,
    disarm,
    install_traps,
    run_lock_holders,
    wait_until,
)
from tests.reliability.warehouse import check_consistent, read_state, step_name, write_set
from tests.rig import RigDatabase, start_bouncer

COUNT = 6
DRIVERS = ("psycopg", "redshift")


@pytest.fixture(params=DRIVERS)
def db(request: pytest.FixtureRequest, pg_server: PgServer) -> RigDatabase:
    name = pg_server.create_database("fault")
    install_traps(pg_server.url(name))
    url = pg_server.url(name) if request.param == "psycopg" else request.getfixturevalue("bouncer").url(name)
    return RigDatabase(name=name, url=url, pg_url=pg_server.url(name), driver=request.param)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_set(tmp_path / "sql", COUNT)
    return tmp_path / "sql"


def trapped_session(db: RigDatabase, process: Dbops) -> int:
    """The backend pid of the process's session that sleeps in the armed trap."""
    found = wait_until(
        lambda: [s[0] for s in backends(db.pg_url, process.pid) if s[2] == "PgSleep"] or not process.running(),
        60, "dbops to reach the trap",
    )
    assert process.running(), process.stderr
    return found[0]


def terminate(pg_url: str, pid: int) -> None:
    with connect(pg_url) as conn:
        assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def applied(db: RigDatabase) -> list[str]:
    state = read_state(db.pg_url)
    check_consistent(state, COUNT)
    return state.applied


def rerun_completes(db: RigDatabase, folder: Path) -> None:
    code, _, err = dbops(db.url, folder, "migrate", "--direct", "--lock-timeout", "30")
    assert code == 0, err
    assert applied(db) == [step_name(i) for i in range(1, COUNT + 1)] + ["R__summary.sql"]
    assert run_lock_holders(db.pg_url) == []


@pytest.mark.parametrize("label", ["V4:statement", "commit"])
def test_working_session_terminated_mid_script_exits_3_and_records_nothing_of_it(db, folder, label) -> None:
    if label == "commit":
        from dbops.config import Settings
        from dbops.engine.engine import Engine
        from dbops.targets import open_target
        from tests.reliability.harness import trap_table

        with Engine(open_target(db.pg_url), Settings(locations=[str(folder)])).locked():
            pass
        trap_table(db.pg_url, "flyway_schema_history", "INSERT", "commit", deferred=True)
        label = f"commit:{step_name(4)}"
    arm(db.pg_url, label)
    with Dbops(db.url, folder, "--json", "migrate", "--direct") as process:
        terminate(db.pg_url, trapped_session(db, process))
        code, out, err = process.finish(60)
    disarm(db.pg_url)
    assert code == 3, err
    assert "lost the connection to the database" in err and names_step(err, 4), err
    assert "Traceback" not in err and json.loads(out)["exit_code"] == 3  # --json: the error as one document
    before = [step_name(i) for i in range(1, 4)]
    # One transaction per script (redshift_connector) keeps V1-V3; a batch (psycopg) loses them with V4, rows included.
    assert applied(db) == (before if db.driver == "redshift" else applied(db)[:3]) and applied(db) == before[: len(applied(db))]
    rerun_completes(db, folder)


def names_step(message: str, number: int) -> bool:
    """The message names script `number` itself, or a batch `first … last` that holds it."""
    if step_name(number) in message:
        return True
    batch = re.search(r"V(\d+)__\S+ … (?:V(\d+)__|R__)", message)
    return bool(batch) and int(batch[1]) <= number and (batch[2] is None or number <= int(batch[2]))


def test_lock_session_terminated_mid_run_never_lets_two_runs_work_at_once(db, folder) -> None:
    arm(db.pg_url, "V3:statement")
    with Dbops(db.url, folder, "--json", "migrate", "--direct") as first:
        trapped_session(db, first)
        (lock_session,) = run_lock_holders(db.pg_url)
        terminate(db.pg_url, lock_session)
        with Dbops(db.url, folder, "--json", "migrate", "--direct", "--lock-timeout", "60") as second:
            wait_until(lambda: "waiting for a session of an earlier run to end" in second.stderr or not second.running(), 60,
                       "the second run to wait for the first one's session")
            assert second.running(), second.stderr
            disarm(db.pg_url)
            first_code, first_out, first_err = first.finish(60)
            second_code, second_out, second_err = second.finish(60)
    assert second_code == 0, second_err
    if db.driver == "redshift":
        assert first_code == 3, first_err
        assert "lost the run lock" in first_err and step_name(4) in first_err, first_err
    else:
        assert first_code == 0, first_err
    first_applied = [a["script"] for a in json.loads(first_out)["applied"]] if first_code == 0 else []
    second_applied = [a["script"] for a in json.loads(second_out)["applied"]]
    assert not set(first_applied) & set(second_applied)
    rerun_completes(db, folder)


@pytest.fixture(scope="module")
def own_server() -> PgServer:
    """A server of this module's own, so stopping it disturbs no other test."""
    root = Path(tempfile.mkdtemp(prefix="dbops-fault-pg-"))
    server = start_server(root / "pgdata")
    with server.admin() as conn:  # a commit must survive the crash below (fsync stays off: the OS keeps the files)
        conn.execute("alter system set synchronous_commit = on")
        conn.execute("select pg_reload_conf()")
    yield server
    server.stop()


def stop_immediately(server: PgServer) -> None:
    """`pg_ctl stop -m immediate`: every backend dies at once, as in a server crash."""
    import pgserver

    pgserver.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server._server.system_user, timeout=30)


@pytest.mark.parametrize("driver", DRIVERS)
def test_server_crash_mid_run_exits_3_and_a_rerun_after_restart_completes(driver, own_server, folder) -> None:
    name = own_server.create_database("crash")
    pg_url = own_server.url(name)
    install_traps(pg_url)
    arm(pg_url, "V4:after")
    bouncer = start_bouncer(own_server) if driver == "redshift" else None
    try:
        url = bouncer.url(name, connect_timeout="3") if bouncer else f"{pg_url}&connect_timeout=3"
        db = RigDatabase(name=name, url=url, pg_url=pg_url, driver=driver)
        with Dbops(url, folder, "migrate", "--direct") as process:
            trapped_session(db, process)
            stop_immediately(own_server)
            code, _, err = process.finish(60)
        assert code == 3, err
        assert "lost the connection to the database" in err and names_step(err, 4) and "Traceback" not in err, err
        code, _, err = dbops(url, folder, "migrate", "--direct")
        assert code == 3 and "cannot connect to" in err and "Traceback" not in err, err
        own_server._server.ensure_postgres_running()
        disarm(pg_url)
        before = [step_name(i) for i in range(1, 4)]  # all of them one script a transaction; a prefix when batched
        assert applied(db) == (before if driver == "redshift" else before[: len(applied(db))])
        rerun_completes(db, folder)
    finally:
        own_server._server.ensure_postgres_running()
        if bouncer:
            bouncer.stop()


def test_pooler_killed_mid_run_exits_3_and_a_rerun_through_a_new_one_completes(pg_server, folder) -> None:
    name = pg_server.create_database("pooler")
    pg_url = pg_server.url(name)
    install_traps(pg_url)
    arm(pg_url, "V2:statement")
    bouncer = start_bouncer(pg_server)
    try:
        db = RigDatabase(name=name, url=bouncer.url(name), pg_url=pg_url, driver="redshift")
        with Dbops(db.url, folder, "migrate", "--direct") as process:
            trapped_session(db, process)
            bouncer.process.kill()
            code, _, err = process.finish(60)
    finally:
        bouncer.stop()
    assert code == 3, err
    assert "lost the connection to the database" in err and step_name(2) in err and "Traceback" not in err, err
    assert applied(db) == [step_name(1)]
    replacement = start_bouncer(pg_server)
    try:
        with Dbops(replacement.url(name), folder, "migrate", "--direct", "--lock-timeout", "60") as rerun:
            wait_until(lambda: "waiting for a session of an earlier run to end" in rerun.stderr or not rerun.running(), 30,
                       "the rerun to wait for the orphaned backend")
            disarm(pg_url)
            code, _, err = rerun.finish(60)
        assert code == 0, err
        rerun_completes(RigDatabase(name=name, url=replacement.url(name), pg_url=pg_url, driver="redshift"), folder)
    finally:
        replacement.stop()


def test_unreachable_database_exits_3_naming_the_redacted_url(folder) -> None:
    for url in ("postgresql://deployer:pw-123@127.0.0.1:1/warehouse?connect_timeout=3",
                "redshift://deployer:pw-123@127.0.0.1:1/warehouse?sslmode=disable&connect_timeout=3"):
        code, out, err = dbops(url, folder, "migrate", "--direct")
        assert code == 3, err
        assert "cannot connect to" in err and "deployer:***@127.0.0.1:1/warehouse" in err and "pw-123" not in out + err
        assert "Traceback" not in err


def test_statement_timeout_stops_a_long_statement_and_records_nothing_of_its_script(db, folder) -> None:
    arm(db.pg_url, "V3:statement")
    code, out, err = dbops(db.url, folder, "migrate", "--direct", "--statement-timeout", "0.5")
    assert code == 1, err
    assert f"{step_name(3)}" in err and "migration V3 (step 3) failed" in err
    if db.driver == "redshift":  # statement by statement, so the statement is known (PostgreSQL does not replay a timeout)
        assert f"{step_name(3)}:2: migration V3 (step 3) failed in statement `select trap('V3:statement')`" in err
    assert "statement timeout" in err and "Nothing of this script was applied" in err
    assert applied(db) == [step_name(1), step_name(2)]
    with psycopg.connect(db.pg_url) as conn:
        failed = conn.execute("select script, status, error from dbops_audit where status <> 'success'").fetchall()
    assert [(s, st) for s, st, _ in failed] == [(step_name(3), "failed")] and "statement timeout" in failed[0][2]
    disarm(db.pg_url)
    rerun_completes(db, folder)


def test_statement_timeout_in_an_autocommit_script_leaves_it_failed_until_repair(db, folder) -> None:
    (folder / f"{step_name(3)}.conf").write_text("executeInTransaction=false\n")
    arm(db.pg_url, "V3:after")
    code, _, err = dbops(db.url, folder, "migrate", "--direct", "--statement-timeout", "0.5")
    assert code == 1, err
    assert "statement timeout" in err and "3 of 4 statement(s) were applied" in err and "dbops repair" in err
    disarm(db.pg_url)
    code, out, err = dbops(db.url, folder, "--json", "info")
    assert next(m["state"] for m in json.loads(out)["migrations"] if m["script"] == step_name(3)) == "Failed"
    code, _, err = dbops(db.url, folder, "migrate", "--direct")
    assert code == 1 and f"{step_name(3)} failed" in err and "dbops repair" in err
    with psycopg.connect(db.pg_url) as conn:
        conn.execute("drop table t_3")  # what the failed script did, undone by hand as the message says
    code, out, err = dbops(db.url, folder, "repair")
    assert code == 0 and f"removed failed row {step_name(3)}" in out, err
    rerun_completes(db, folder)


def test_a_failure_at_commit_is_reported_and_nothing_of_the_script_recorded(db, tmp_path) -> None:
    """A deferred constraint fails at COMMIT, after every statement ran: still exit 1 naming the script, no traceback."""
    folder = tmp_path / "deferred"
    folder.mkdir()
    (folder / "V1__parents.sql").write_text("create table parents (id int primary key);\n")
    (folder / "V2__children.sql").write_text(
        "create table children (parent_id int references parents deferrable initially deferred);\n"
        "insert into children values (1);\n")
    code, _, err = dbops(db.url, folder, "migrate", "--direct")
    assert code == 1, err
    assert "V2__children.sql" in err and "violates foreign key constraint" in err, err
    assert "Nothing of this script was applied" in err and "Traceback" not in err
    state = read_state(db.pg_url)
    assert state.applied == ["V1__parents.sql"] and "children" not in state.tables
    with psycopg.connect(db.pg_url) as conn:
        assert conn.execute("select script, status from dbops_audit where status <> 'success'").fetchall() == [("V2__children.sql", "failed")]
    (folder / "V2__children.sql").write_text("create table children (parent_id int references parents deferrable initially deferred);\n")
    code, _, err = dbops(db.url, folder, "migrate", "--direct")
    assert code == 0, err


def test_a_statement_cancelled_by_an_operator_is_not_run_again(db, folder) -> None:
    """pg_cancel_backend on a runaway statement ends the migration (exit 1); dbops does not start it a second time."""
    arm(db.pg_url, "V3:statement")
    try:
        with Dbops(db.url, folder, "migrate", "--direct") as process:
            with connect(db.pg_url) as conn:
                conn.execute("select pg_cancel_backend(%s)", (trapped_session(db, process),))
            again = wait_until(
                lambda: [s for s in backends(db.pg_url, process.pid) if s[2] == "PgSleep"] or not process.running(), 30,
                "dbops to end or to run the statement again",
            )
            replayed = process.running() and again
            code, _, err = process.finish(30) if not replayed else (None, "", process.stderr)
    finally:
        disarm(db.pg_url)
    assert not replayed, "the cancelled statement was started again"
    assert code == 1 and "canceling statement due to user request" in err and step_name(3) in err, err
    assert applied(db) == [step_name(1), step_name(2)]
