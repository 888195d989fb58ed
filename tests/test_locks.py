"""The run lock: Redshift's `LOCK dbops_lock` (tested on PostgreSQL directly and through redshift_connector) and the advisory lock."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.engine.locks import AdvisoryLock, TableLock, make_lock
from dbops.errors import LockTimeout
from dbops.targets import open_target
from tests.pg import PgServer
from tests.rig import RigDatabase

SCHEMA, TABLE = "public", "flyway_schema_history"
KINDS = ["table-psycopg", "table-redshift", "advisory-psycopg"]
HOLD_LOCK = """
import sys, time
from dbops.engine.locks import make_lock
from dbops.targets import open_target
lock = make_lock(open_target(sys.argv[1]), "public", "flyway_schema_history")
lock.acquire(30)
print(lock.session.backend_pid(), flush=True)
time.sleep(120)
"""


@pytest.fixture(params=KINDS)
def lock_db(request: pytest.FixtureRequest, pg_server: PgServer) -> RigDatabase:
    """A fresh database and a URL selecting the lock under test (table lock through both drivers, advisory lock)."""
    kind, driver = request.param.split("-")
    name = pg_server.create_database()
    pg_url = pg_server.url(name)
    if driver == "redshift":
        return RigDatabase(name=name, url=request.getfixturevalue("bouncer").url(name), pg_url=pg_url, driver=kind)
    return RigDatabase(name=name, url=f"{pg_url}&lock=table" if kind == "table" else pg_url, pg_url=pg_url, driver=kind)


def lock_for(db: RigDatabase):
    return make_lock(open_target(db.url), SCHEMA, TABLE)


def holders(db: RigDatabase) -> list[tuple]:
    """(pid, lock mode, granted, session state) of every server-side lock the run lock can be."""
    with psycopg.connect(db.pg_url) as conn:
        return conn.execute(
            "select l.pid, l.mode, l.granted, a.state from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where l.database = (select oid from pg_database where datname = current_database()) "
            "and ((l.locktype = 'relation' and l.relation = to_regclass('public.dbops_lock')) or l.locktype = 'advisory') "
            "order by l.granted desc, l.pid"
        ).fetchall()


def test_the_url_selects_the_lock(lock_db) -> None:
    expected = AdvisoryLock if lock_db.driver == "advisory" else TableLock
    assert isinstance(lock_for(lock_db), expected)


@pytest.mark.parametrize("lock_db", ["table-psycopg", "table-redshift"], indirect=True)
def test_table_lock_is_an_open_transaction_holding_dbops_lock(lock_db) -> None:
    with lock_for(lock_db) as lock:
        lock.acquire(5)
        assert holders(lock_db) == [(lock.session.backend_pid(), "AccessExclusiveLock", True, "idle in transaction")]
    assert holders(lock_db) == []


def test_a_second_migrator_waits_a_bounded_time_and_is_told_who_holds_the_lock(lock_db) -> None:
    first, second = lock_for(lock_db), lock_for(lock_db)
    first.acquire(5)
    told: list[str] = []
    try:
        with pytest.raises(LockTimeout) as raised:
            second.acquire(0.6, told.append)
        message = str(raised.value)
        assert raised.value.exit_code == 3
        assert f"server pid {first.session.backend_pid()}" in message and "dbops " in message
        assert "--lock-timeout" in message
        assert len(told) == 1 and told[0].startswith("waiting for the run lock held by dbops ")
        assert second.session is None
    finally:
        first.release()
    second.acquire(5)
    second.release()


def test_the_lock_dies_with_a_killed_process(lock_db) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, lock_db.url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pid = int(holder.stdout.readline())
        assert pid in [row[0] for row in holders(lock_db) if row[2]]
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with lock_for(lock_db) as lock:
            lock.acquire(30)
            assert lock.session.backend_pid() in [row[0] for row in holders(lock_db) if row[2]]
    finally:
        holder.kill()
        holder.wait()


def _migrate(db: RigDatabase, folder: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DBOPS_URL": db.url, "DBOPS_LOCATIONS": str(folder)}
    return subprocess.Popen(
        [sys.executable, "-m", "dbops.cli", "--json", "migrate", "--direct", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("lock_db", ["table-redshift", "advisory-psycopg"], indirect=True)
def test_eight_migrators_started_together_apply_every_script_exactly_once(lock_db, scripts) -> None:
    folder = scripts({
        "V1__orders.sql": "create table orders (id int, total numeric(12, 2));",
        "V2__load.sql": "insert into orders select g, g * 1.5 from generate_series(1, 200) g;",
        "V3__vacuum.sql": "vacuum orders;",
        "V4__customers.sql": "create table customers (id int);\nalter table orders add column customer_id int;",
        "R__totals.sql": "create or replace view totals as select sum(total) as total from orders;",
    })
    processes = [_migrate(lock_db, folder, "--lock-timeout", "120") for _ in range(8)]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, [err for _, err in outputs]
    applied = Counter(a["script"] for out, _ in outputs for a in json.loads(out)["applied"])
    assert applied == Counter({name: 1 for name in ("V1__orders.sql", "V2__load.sql", "V3__vacuum.sql", "V4__customers.sql", "R__totals.sql")})
    with psycopg.connect(lock_db.pg_url) as conn:
        history = conn.execute(f"select script, success from {TABLE} order by installed_rank").fetchall()
        assert history == [(name, True) for name in applied]
        assert conn.execute("select count(*), sum(total) from orders").fetchone() == (200, 30150)
        assert conn.execute("select count(*) from dbops_audit").fetchone() == (5,)


def test_killing_the_lock_holder_lets_the_waiting_migrator_proceed(lock_db, scripts) -> None:
    folder = scripts({
        # Long enough for a second dbops to start and queue behind it on a loaded machine; the killed holder's
        # backend sleeps on, holding the lock, until the sleep ends.
        "V1__slow.sql": "create table first (id int);\nselect pg_sleep(8);",
        "V2__quick.sql": "create table second (id int);",
    })
    holder = _migrate(lock_db, folder)
    waiter = None
    try:
        deadline = time.monotonic() + 30
        while not _running(lock_db, "select pg_sleep(8)"):
            assert time.monotonic() < deadline and holder.poll() is None, holder.communicate()
            time.sleep(0.05)
        waiter = _migrate(lock_db, folder, "--lock-timeout", "60")
        told = ""
        while "waiting for the run lock held by dbops" not in told and waiter.poll() is None:
            told = waiter.stderr.readline()
        assert waiter.poll() is None, waiter.communicate()
        os.kill(holder.pid, signal.SIGKILL)
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        # The killed holder's last query may still commit on the server (a batch can hold V2 too); the waiter
        # applies whatever that left, and the history below shows each script exactly once.
        assert set(a["script"] for a in json.loads(out)["applied"]) <= {"V1__slow.sql", "V2__quick.sql"}
    finally:
        for process in (holder, waiter):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    with psycopg.connect(lock_db.pg_url) as conn:
        history = conn.execute(f"select script, success from {TABLE} order by installed_rank").fetchall()
        assert history == [("V1__slow.sql", True), ("V2__quick.sql", True)]
        assert conn.execute("select to_regclass('first') is not null and to_regclass('second') is not null").fetchone() == (True,)


def _running(db: RigDatabase, query: str) -> bool:
    """True while some session of the database is running `query`."""
    with psycopg.connect(db.pg_url) as conn:
        return bool(conn.execute(
            "select 1 from pg_stat_activity where datname = current_database() and state = 'active' and position(%s in query) > 0", (query,)
        ).fetchall())


@pytest.mark.parametrize("lock_db", ["table-psycopg", "table-redshift"], indirect=True)
def test_a_schema_the_table_lock_creates_is_recorded_as_flyway_records_it(lock_db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table fresh.a (id int);"})
    assert len(list(Engine(open_target(lock_db.url), Settings(locations=[str(folder)], schema="fresh")).migrate())) == 1
    with psycopg.connect(lock_db.pg_url) as conn:
        assert conn.execute("select type, script from fresh.flyway_schema_history order by installed_rank").fetchall() == [
            ("SCHEMA", '"fresh"'), ("SQL", "V1__a.sql"),
        ]
        assert conn.execute("select to_regclass('fresh.dbops_lock') is not null").fetchone() == (True,)
