"""The local Dagster instance's storage: Dagster's SQLite layout, with an event log that keeps its connections.

Dagster's SQLite event log opens a new engine and connection for every event and closes it again,
which costs 10-20 ms per event here; a migrate run stores several events per applied script. This
event log keeps one connection per database file (the newest few run files plus the index), commits
with `synchronous=NORMAL` in the WAL mode Dagster already sets, and tells watchers about new
events by polling (Dagster's file watcher waits for changes to the `.db` file, which WAL delays).
Deployed instances use dagster-postgres instead.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster._config import StringSource
from dagster._core.storage.event_log.polling_event_watcher import SqlPollingEventWatcher
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

OPEN_RUN_FILES = 4


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage that reuses one connection per database file."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._poller: SqlPollingEventWatcher | None = None
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=StaticPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        db.event.listen(engine, "connect", _relaxed_sync)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        run_files = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in run_files[: max(0, len(run_files) - OPEN_RUN_FILES)]:
            self._engines.pop(name).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def wipe(self) -> None:
        self._close_all()
        super().wipe()

    def watch(self, run_id: str, cursor: str | None, callback: Any) -> None:
        if self._poller is None:
            self._poller = SqlPollingEventWatcher(self)
        self._poller.watch_run(run_id, cursor, callback)

    def end_watch(self, run_id: str, handler: Any) -> None:
        if self._poller is not None:
            self._poller.unwatch_run(run_id, handler)

    def dispose(self) -> None:
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        self._close_all()
        super().dispose()

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()


def _relaxed_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class DbopsSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage under `base_dir` (same files and layout), with the pooled event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        base_dir = os.path.abspath(base_dir)
        os.makedirs(base_dir, exist_ok=True)
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(os.path.join(base_dir, "history", ""))
        self._event_log_storage = PooledSqliteEventLogStorage(os.path.join(base_dir, "history", "runs", ""))
        self._schedule_storage = SqliteScheduleStorage.from_local(os.path.join(base_dir, "schedules"))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]) -> DbopsSqliteStorage:
        return cls(inst_data=inst_data, **config_value)
