"""Shared fixtures: the embedded PostgreSQL server, a fresh database per test, script folders."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.pg import PgServer, start_server


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
