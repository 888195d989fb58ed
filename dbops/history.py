"""Flyway's schema history table and dbops's audit table, for PostgreSQL and Redshift."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dbops.targets.base import REDSHIFT, Session

BASELINE_DESCRIPTION = "<< Flyway Baseline >>"
SCHEMA_DESCRIPTION = "<< Flyway Schema Creation >>"
AUDIT_TABLE = "dbops_audit"
# PostgreSQL only, for rows written in the same round trip as the migration: time since BEGIN, and now.
# A batch of migrations marks each one's start in the `dbops.started` setting; alone, a migration starts at BEGIN.
SCRIPT_STARTED_MARK = "select set_config('dbops.started', clock_timestamp()::text, true)"
SERVER_ELAPSED_MS = (
    "cast(extract(epoch from clock_timestamp() - "
    "coalesce(nullif(current_setting('dbops.started', true), '')::timestamptz, now())) * 1000 as int)"
)
SERVER_NOW = "(clock_timestamp() at time zone 'UTC')"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class AppliedMigration:
    """One row of the history table."""

    installed_rank: int
    version: str | None
    description: str
    type: str
    script: str
    checksum: int | None
    installed_by: str
    installed_on: datetime | None
    execution_time: int
    success: bool


@dataclass(frozen=True)
class AuditRecord:
    """One attempt to apply a script: who, which commit, what happened."""

    run_id: str
    source: str
    commit_id: str
    commit_author: str
    commit_message: str
    script: str
    version: str | None
    checksum: int | None
    status: str
    error: str
    started_at: datetime
    finished_at: datetime | None
    installed_by: str
    target: str


@dataclass(frozen=True)
class AppliedAttempt:
    """The successful attempt behind a history row, as the audit table recorded it."""

    run_id: str
    source: str
    commit_id: str
    commit_author: str
    finished_at: datetime | None


def history_ddl(dialect: str, schema: str, table: str) -> list[str]:
    """The statements Flyway uses to create its history table, in this dialect."""
    qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
    if dialect == REDSHIFT:
        # Flyway's Redshift script, with its column-level `SORTKEY` written as the equivalent table-level
        # `SORTKEY ("installed_rank")` (a single-column compound sort key either way) so sqlglot can check it.
        return [
            f"""CREATE TABLE {qualified} (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT getdate(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
) SORTKEY ("installed_rank")""",
            f"ALTER TABLE {qualified} ADD CONSTRAINT {quote_ident(table + '_pk')} PRIMARY KEY (\"installed_rank\")",
        ]
    return [
        f"""CREATE TABLE {qualified} (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INT,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INT NOT NULL,
    "success" BOOLEAN NOT NULL
)""",
        f"ALTER TABLE {qualified} ADD CONSTRAINT {quote_ident(table + '_pk')} PRIMARY KEY (\"installed_rank\")",
        f"CREATE INDEX {quote_ident(table + '_s_idx')} ON {qualified} (\"success\")",
    ]


def audit_ddl(dialect: str, schema: str) -> list[str]:
    """The audit table: one row per attempt, written even when the attempt fails."""
    qualified = f"{quote_ident(schema)}.{AUDIT_TABLE}"
    text = "VARCHAR(65535)" if dialect == REDSHIFT else "TEXT"
    sortkey = ' SORTKEY ("started_at")' if dialect == REDSHIFT else ""
    return [
        f"""CREATE TABLE {qualified} (
    "run_id" VARCHAR(64) NOT NULL,
    "source" VARCHAR(20) NOT NULL,
    "commit_id" VARCHAR(64),
    "commit_author" VARCHAR(256),
    "commit_message" {text},
    "script" VARCHAR(1000) NOT NULL,
    "version" VARCHAR(50),
    "checksum" INT,
    "status" VARCHAR(20) NOT NULL,
    "error" {text},
    "started_at" TIMESTAMP NOT NULL,
    "finished_at" TIMESTAMP NOT NULL,
    "installed_by" VARCHAR(100) NOT NULL,
    "target" VARCHAR(1000)
){sortkey}"""
    ]


class History:
    """Reads and writes the history and audit tables through one session."""

    def __init__(self, session: Session, schema: str, table: str) -> None:
        self.session = session
        self.schema = schema
        self.table = table
        self.qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
        self.audit_qualified = f"{quote_ident(schema)}.{AUDIT_TABLE}"

    def fit(self, text: str, limit: int) -> str:
        """`text` cut to fit a VARCHAR(limit): characters on PostgreSQL, UTF-8 bytes on Redshift."""
        if self.session.dialect != REDSHIFT:
            return text[:limit]
        data = text.encode()
        return text if len(data) <= limit else data[:limit].decode(errors="ignore")

    def _table_exists(self, name: str) -> bool:
        rows = self.session.query(
            "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
            (self.schema, name),
        )
        return bool(rows)

    def exists(self) -> bool:
        return self._table_exists(self.table)

    def missing_schemas(self, schemas: Sequence[str]) -> list[str]:
        """Those of `schemas` the database does not have (pg_namespace lists them whatever the privileges)."""
        if not schemas:
            return []
        markers = ", ".join(["%s"] * len(schemas))
        found = self.session.query(f"select nspname from pg_namespace where nspname in ({markers})", tuple(schemas))
        existing = {name for (name,) in found}
        return [name for name in schemas if name not in existing]

    def create(self, schemas: Sequence[str], missing: Sequence[str], schema_created: bool = False) -> None:
        """Create the missing schemas, the history and audit tables, in one transaction.

        A new history table records the schemas created for it as Flyway does: one SCHEMA row at rank 0 whose
        script is the quoted names, comma-separated. `schema_created`: the run lock has just created the
        history table's schema (to hold its lock table).
        """
        dialect = self.session.dialect
        for name in missing:
            self.session.execute(f"CREATE SCHEMA {quote_ident(name)}")
        created = [name for name in schemas if name in missing or (name == self.schema and schema_created)]
        if not self.exists():
            for statement in history_ddl(dialect, self.schema, self.table):
                self.session.execute(statement)
            if created:
                marker = ",".join(quote_ident(name) for name in created)
                self.insert(0, None, SCHEMA_DESCRIPTION, "SCHEMA", marker, None, 0, True)
        if not self._table_exists(AUDIT_TABLE):
            for statement in audit_ddl(dialect, self.schema):
                self.session.execute(statement)

    def ensure(self, schemas: Sequence[str] = (), schema_created: bool = False) -> None:
        """Create what is missing of `schemas` (the history table's own schema always), the history and audit
        tables, committed; safe to call from concurrent migrators under the lock."""
        schemas = list(dict.fromkeys(schemas if self.schema in schemas else [self.schema, *schemas]))
        missing = self.missing_schemas(schemas)
        if not missing and self.exists() and self._table_exists(AUDIT_TABLE):
            self.session.commit()
            return
        self.create(schemas, missing, schema_created)
        self.session.commit()

    def rows(self) -> list[AppliedMigration]:
        """Every history row, in installed_rank order ([] when the table does not exist)."""
        if not self.exists():
            return []
        rows = self.session.query(
            f'select "installed_rank", "version", "description", "type", "script", "checksum", '
            f'"installed_by", "installed_on", "execution_time", "success" from {self.qualified} '
            f'order by "installed_rank"'
        )
        return [AppliedMigration(*row) for row in rows]

    def next_rank(self) -> int:
        return int(self.session.query(f'select coalesce(max("installed_rank"), 0) + 1 from {self.qualified}')[0][0])

    def insert(
        self, rank: int, version: str | None, description: str, type_: str, script: str,
        checksum: int | None, execution_time: int, success: bool,
    ) -> None:
        """Write one history row."""
        self.session.execute(
            *self.insert_statement(rank, version, description, type_, script, checksum, execution_time, success)
        )

    def insert_statement(
        self,
        rank: int,
        version: str | None,
        description: str,
        type_: str,
        script: str,
        checksum: int | None,
        execution_time: int | None,
        success: bool,
    ) -> tuple[str, tuple]:
        """The insert of one history row, as (sql, params); execution_time None: measured by the server."""
        values = (
            rank, version, self.fit(description, 200), type_, self.fit(script, 1000), checksum, self.fit(self.session.user, 100)
        )
        if execution_time is None:
            elapsed = SERVER_ELAPSED_MS
        else:
            elapsed, values = "%s", (*values, execution_time)
        return (
            f'insert into {self.qualified} ("installed_rank", "version", "description", "type", "script", '
            f'"checksum", "installed_by", "execution_time", "success") values (%s, %s, %s, %s, %s, %s, %s, {elapsed}, %s)',
            (*values, success),
        )

    def update_success_statement(self, rank: int, execution_time: int) -> tuple[str, tuple]:
        """Mark the row at `rank` applied, as (sql, params)."""
        return (
            f'update {self.qualified} set "success" = %s, "execution_time" = %s where "installed_rank" = %s',
            (True, execution_time, rank),
        )

    def execution_times(self, first_rank: int, last_rank: int) -> dict[int, int]:
        """execution_time of the rows ranked first_rank..last_rank, by rank."""
        rows = self.session.query(
            f'select "installed_rank", "execution_time" from {self.qualified} where "installed_rank" between %s and %s',
            (first_rank, last_rank),
        )
        return {int(rank): int(ms) for rank, ms in rows}

    def update_checksum(self, rank: int, checksum: int | None, description: str, type_: str) -> None:
        self.session.execute(
            f'update {self.qualified} set "checksum" = %s, "description" = %s, "type" = %s where "installed_rank" = %s',
            (checksum, self.fit(description, 200), type_, rank),
        )

    def delete_rank(self, rank: int) -> None:
        self.session.execute(f'delete from {self.qualified} where "installed_rank" = %s', (rank,))

    def audit(self, record: AuditRecord) -> None:
        self.session.execute(*self.audit_statement(record))

    def audit_statement(self, record: AuditRecord) -> tuple[str, tuple]:
        """The insert of one audit row, as (sql, params)."""
        return (
            f'insert into {self.audit_qualified} ("run_id", "source", "commit_id", "commit_author", "commit_message", '
            f'"script", "version", "checksum", "status", "error", "started_at", "finished_at", "installed_by", "target") '
            f"values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {'%s' if record.finished_at else SERVER_NOW}, %s, %s)",
            (
                self.fit(record.run_id, 64),
                self.fit(record.source, 20),
                self.fit(record.commit_id, 64),
                self.fit(record.commit_author, 256),
                self.fit(record.commit_message, 65535),
                self.fit(record.script, 1000),
                record.version,
                record.checksum,
                self.fit(record.status, 20),
                self.fit(record.error, 65535),
                record.started_at,
                *([record.finished_at] if record.finished_at else []),
                self.fit(record.installed_by, 100),
                self.fit(record.target, 1000),
            ),
        )

    def successful_attempts(self) -> dict[tuple[str, int | None], AppliedAttempt]:
        """The latest successful audit row of each (script, checksum): which run applied it, from which commit."""
        if not self._table_exists(AUDIT_TABLE):
            return {}
        rows = self.session.query(
            f'select "script", "checksum", "run_id", "source", "commit_id", "commit_author", "finished_at" '
            f"from {self.audit_qualified} where \"status\" = 'success' order by \"finished_at\""
        )
        return {(row[0], row[1]): AppliedAttempt(*row[2:]) for row in rows}
