"""Shared fixtures: the embedded PostgreSQL server, a fresh database per test, script folders."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.pg import PgServer, start_server
from tests.rig import Bouncer, RigDatabase, start_bouncer


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    """One PostgreSQL server (pgserver) per test process, deleted at the end."""
    root = Path(tempfile.mkdtemp(prefix="dbops-pg-"))
    server = start_server(root / "pgdata")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty database on the test server (psycopg driver)."""
    return pg_server.url(pg_server.create_database())


@pytest.fixture
def scripts(tmp_path: Path):
    """Write scripts into a fresh `sql/` folder: scripts({"V1__a.sql": "create table a (id int);"})."""
    folder = tmp_path / "sql"
    folder.mkdir()

    def write(files: dict[str, str | bytes]) -> Path:
        for name, content in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="")
        return folder

    return write


@pytest.fixture
def dbops_home(monkeypatch: pytest.MonkeyPatch) -> Path:
    """DBOPS_HOME in a fresh folder outside pytest's root-only one (the embedded server runs as the pgserver
    user there); the embedded server it may start is stopped and the folder removed afterwards."""
    from dbops.targets.embedded import EmbeddedDatabase

    home = Path(tempfile.mkdtemp(prefix="dbops-home-"))
    monkeypatch.setenv("DBOPS_HOME", str(home))
    yield home
    EmbeddedDatabase(home / "pgdata").stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def bouncer(pg_server: PgServer) -> Bouncer:
    """pgbouncer in front of the test server, so redshift_connector can reach it (one per test process)."""
    running = start_bouncer(pg_server)
    yield running
    running.stop()


@pytest.fixture
def rs_db(pg_server: PgServer, bouncer: Bouncer) -> RigDatabase:
    """A new, empty database reached with a `redshift://` URL through pgbouncer (plus its psycopg URL for checks)."""
    name = pg_server.create_database()
    return RigDatabase(name=name, url=bouncer.url(name), pg_url=pg_server.url(name), driver="redshift")


@pytest.fixture
def rs_url(rs_db: RigDatabase) -> str:
    """The `redshift://` URL (redshift_connector through pgbouncer, sslmode=disable) of a new, empty database."""
    return rs_db.url


@pytest.fixture(params=["psycopg", "redshift"])
def any_db(request: pytest.FixtureRequest, pg_server: PgServer) -> RigDatabase:
    """A new, empty database, once through psycopg directly and once through redshift_connector and pgbouncer."""
    name = pg_server.create_database()
    if request.param == "psycopg":
        return RigDatabase(name=name, url=pg_server.url(name), pg_url=pg_server.url(name), driver="psycopg")
    bouncer = request.getfixturevalue("bouncer")
    return RigDatabase(name=name, url=bouncer.url(name), pg_url=pg_server.url(name), driver="redshift")


@pytest.fixture
def any_url(any_db: RigDatabase) -> str:
    """The URL dbops is given, parametrized over both drivers; use `any_db.pg_url` to inspect with psycopg."""
    return any_db.url


@pytest.fixture(scope="session")
def dataapi(pg_server: PgServer):
    """The local Redshift Data API (tests/dataapi.py) for the test server's databases, one per test process."""
    from tests.dataapi import DataApiEndpoint

    endpoint = DataApiEndpoint(pg_server)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def da_db(pg_server: PgServer, dataapi, monkeypatch: pytest.MonkeyPatch) -> RigDatabase:
    """A new, empty database reached with a `redshift-data://` URL through the local Data API endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = pg_server.create_database()
    return RigDatabase(name=name, url=dataapi.url(name), pg_url=pg_server.url(name), driver="redshift-data")
