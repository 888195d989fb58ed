"""Flyway's schema history table and dbops's audit table, for PostgreSQL and Redshift."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dbops.errors import ConfigError
from dbops.scripts.migrations import DESCRIPTION_LIMIT, RowType, abbreviate_description
from dbops.targets.base import Dialect, Session, SqlError

BASELINE_DESCRIPTION = "<< Flyway Baseline >>"
SCHEMA_DESCRIPTION = "<< Flyway Schema Creation >>"
AUDIT_TABLE = "dbops_audit"
# PostgreSQL only, for rows written in the same round trip as the migration: time since BEGIN
# (or since the batch's SCRIPT_STARTED_MARK), and now.
SERVER_ELAPSED_MS = (
    "cast(extract(epoch from clock_timestamp() - "
    "coalesce(nullif(current_setting('dbops.started', true), '')::timestamptz, now())) * 1000 as int)"
)
SERVER_NOW = "(clock_timestamp() at time zone 'UTC')"
# Audit statuses. A script outside a transaction gets a STARTED row before its first statement; the next
# run, holding the run lock, marks any row still STARTED as INTERRUPTED (its process died mid-way).
SUCCESS, FAILED, STARTED, INTERRUPTED = "success", "failed", "started", "interrupted"
UNDEFINED_COLUMN = "42703"
SCRIPTS_BY_NAME = 500  # up to this many scripts, the failed-attempts query names them (past it, it reads all rows)
OWNER_COLUMN = "history_table"  # which history table a row belongs to; ensure() adds it to older audit tables
HISTORY_COLUMNS = (
    "installed_rank", "version", "description", "type", "script", "checksum", "installed_by", "installed_on",
    "execution_time", "success",
)
# The longest name the server keeps, in bytes: NAMEDATALEN - 1 on PostgreSQL (63 unless built otherwise; the
# server says), 127 on Redshift. A longer name is cut short, so it would not be the name dbops looks up.
POSTGRESQL_NAME_BYTES, REDSHIFT_NAME_BYTES = 63, 127
AUDIT_COLUMNS = (
    "run_id", "source", "commit_id", "commit_author", "commit_message", "script", "version", "checksum",
    "status", "error", "started_at", "finished_at", "installed_by", "target",
)  # what every audit table dbops wrote has; OWNER_COLUMN came later
TABLE_SETTING = "--table, DBOPS_TABLE or flyway.table"
SCHEMA_SETTING = "--schema, DBOPS_SCHEMA, flyway.defaultSchema or flyway.schemas"


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
class Attempt:
    """The last attempt of a script when it did not succeed (an audit row), for `info` and `validate`."""

    script: str
    status: str
    at: datetime
    run_id: str
    source: str
    commit: str
    error: str

    @property
    def first_line(self) -> str:
        return next((line for line in self.error.splitlines() if line.strip()), "")


@dataclass(frozen=True)
class Layout:
    """Which of dbops's tables exist in the schema, and whether the audit table has its newest column."""

    history: bool
    audit: bool
    audit_owner: bool


@dataclass(frozen=True)
class AppliedAttempt:
    """The successful attempt behind a history row, as the audit table recorded it."""

    run_id: str
    source: str
    commit_id: str
    commit_author: str
    finished_at: datetime | None


def derived_name(table: str, suffix: str, limit: int) -> str:
    """`<table><suffix>` (Flyway's constraint and index names), or where that is longer than `limit` bytes, the table's
    name cut short plus a hash of it and the suffix: the server would otherwise cut the name itself, and two of them
    (or one and the table's own name) could come out the same."""
    name = table + suffix
    if len(name.encode()) <= limit:
        return name
    tag = "_" + hashlib.sha256(table.encode()).hexdigest()[:8] + suffix
    head = table.encode()[: limit - len(tag)].decode(errors="ignore")
    return head + tag


def history_ddl(dialect: Dialect, schema: str, table: str, limit: int = POSTGRESQL_NAME_BYTES) -> list[str]:
    """The statements Flyway uses to create its history table, in this dialect; `limit`: the server's name length."""
    qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
    primary_key = quote_ident(derived_name(table, "_pk", limit))
    if dialect == Dialect.REDSHIFT:
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
            f"ALTER TABLE {qualified} ADD CONSTRAINT {primary_key} PRIMARY KEY (\"installed_rank\")",
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
        f"ALTER TABLE {qualified} ADD CONSTRAINT {primary_key} PRIMARY KEY (\"installed_rank\")",
        f"CREATE INDEX {quote_ident(derived_name(table, '_s_idx', limit))} ON {qualified} (\"success\")",
    ]


def audit_ddl(dialect: Dialect, schema: str) -> list[str]:
    """The audit table: one row per attempt, written even when the attempt fails."""
    qualified = f"{quote_ident(schema)}.{AUDIT_TABLE}"
    text = "VARCHAR(65535)" if dialect == Dialect.REDSHIFT else "TEXT"
    sortkey = ' SORTKEY ("started_at")' if dialect == Dialect.REDSHIFT else ""
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
    "target" VARCHAR(1000),
    "history_table" VARCHAR(128)
){sortkey}"""
    ]


def audit_upgrade_ddl(schema: str) -> str:
    """The column a previous version's audit table lacks: the history table each row belongs to (NULL on old rows)."""
    return f'ALTER TABLE {quote_ident(schema)}.{AUDIT_TABLE} ADD COLUMN "{OWNER_COLUMN}" VARCHAR(128)'


class History:
    """Reads and writes the history and audit tables through one session."""

    def __init__(self, session: Session, schema: str, table: str) -> None:
        self.session = session
        self.schema = schema
        self.table = table
        self.qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
        self.audit_qualified = f"{quote_ident(schema)}.{AUDIT_TABLE}"
        self.owned = True  # the audit table has the owner column (layout() tells)
        self._name_limit: int | None = None

    def fit(self, text: str, limit: int) -> str:
        """`text` cut to fit a VARCHAR(limit): characters on PostgreSQL, UTF-8 bytes on Redshift."""
        if self.session.dialect != Dialect.REDSHIFT:
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
            for statement in history_ddl(dialect, self.schema, self.table, self.name_limit()):
                self.session.execute(statement)
            if created:
                marker = ",".join(quote_ident(name) for name in created)
                self.insert(0, None, SCHEMA_DESCRIPTION, RowType.SCHEMA, marker, None, 0, True)
        if not self._table_exists(AUDIT_TABLE):
            for statement in audit_ddl(dialect, self.schema):
                self.session.execute(statement)

    def name_limit(self) -> int:
        """The longest name the server keeps, in bytes (asked once, and only when a name might be too long)."""
        if self.session.dialect == Dialect.REDSHIFT:
            return REDSHIFT_NAME_BYTES
        if self._name_limit is None:
            self._name_limit = int(self.session.query("select current_setting('max_identifier_length')")[0][0])
        return self._name_limit

    def check_names(self, schemas: Sequence[str] = ()) -> None:
        """Refuse (exit 2) a history table or schema name longer than the server keeps: it would be cut short."""
        names = [("--table", self.table, TABLE_SETTING), ("--schema", self.schema, SCHEMA_SETTING)]
        names += [("flyway.schemas", name, SCHEMA_SETTING) for name in schemas if name != self.schema]
        for flag, name, settings in names:
            size = len(name.encode())
            if size > POSTGRESQL_NAME_BYTES and size > self.name_limit():
                server = "Redshift" if self.session.dialect == Dialect.REDSHIFT else "the server"
                raise ConfigError(
                    f"{flag} {name!r} is {size} bytes long; {server} keeps names of at most {self.name_limit()} bytes "
                    f"and would cut it short. Choose a shorter name ({settings})"
                )

    def layout(self, schemas: Sequence[str] = ()) -> Layout:
        """Which of the tables exist, and whether the audit table has the owner column: one catalog query.

        Refuses (ConfigError, exit 2) names the server would cut short (`schemas`: the other schemas dbops manages)
        and a table under the history table's name that lacks Flyway's columns, before anything reads or writes it.
        """
        self.check_names(schemas)
        rows = self.session.query(
            "select c.relname, a.attname from pg_catalog.pg_class c "
            "join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
            "left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
            "where n.nspname = %s and c.relname in (%s, %s) and c.relkind in ('r', 'p', 'v', 'm', 'f')",
            (self.schema, self.table, AUDIT_TABLE),
        )
        columns: dict[str, set[str]] = {}
        for table, column in rows:
            columns.setdefault(table, set()).add(column)
        history, audit = self.table in columns, AUDIT_TABLE in columns
        if history:
            missing = [name for name in HISTORY_COLUMNS if name not in columns[self.table]]
            if missing:
                raise ConfigError(
                    f"{self.schema}.{self.table} exists but is not a Flyway schema history table: missing columns "
                    f"{', '.join(missing)}. Name another history table ({TABLE_SETTING}), or move that table away"
                )
        if audit:
            missing = [name for name in AUDIT_COLUMNS if name not in columns[AUDIT_TABLE]]
            if missing:
                raise ConfigError(
                    f"{self.schema}.{AUDIT_TABLE} exists but is not dbops's audit table: missing columns "
                    f"{', '.join(missing)}. dbops keeps its audit table next to the history table: rename that table, "
                    f"or choose another schema (--schema, DBOPS_SCHEMA or flyway.defaultSchema)"
                )
        owner = audit and OWNER_COLUMN in columns[AUDIT_TABLE]
        self.owned = owner
        return Layout(history, audit, owner)

    def ensure(self, schemas: Sequence[str] = (), schema_created: bool = False) -> str | None:
        """Create what is missing of `schemas` (the history table's own schema always), the history and audit
        tables, committed; safe to call from concurrent migrators under the lock.

        An audit table from an earlier version gets the owner column; when that is not allowed (another user
        owns the table) the run goes on without it, and the warning returned says what to do.
        """
        schemas = list(dict.fromkeys(schemas if self.schema in schemas else [self.schema, *schemas]))
        layout = self.layout(schemas)
        missing = self.missing_schemas(schemas)
        if missing or not (layout.history and layout.audit):
            self.create(schemas, missing, schema_created)
        if not layout.audit:
            self.owned = True  # created just now, with the column
        warning = self._upgrade_audit() if layout.audit and not layout.audit_owner else None
        self.session.commit()
        return warning

    def _upgrade_audit(self) -> str | None:
        self.session.commit()  # what create() did stays, whatever happens to the upgrade
        try:
            self.session.execute(audit_upgrade_ddl(self.schema))
            self.session.commit()
            self.owned = True
            return None
        except SqlError as exc:
            self.session.rollback()
            if self.layout().audit_owner:  # another migrator (of another history table) added it meanwhile
                return None
            return (
                f"cannot add column {OWNER_COLUMN} to {self.schema}.{AUDIT_TABLE} ({exc}); audit rows are written "
                f"without it, and a run left unfinished in another history table of this schema may be marked "
                f"interrupted by this one. Have the table's owner run: {audit_upgrade_ddl(self.schema)}"
            )

    def rows(self, exists: bool | None = None) -> list[AppliedMigration]:
        """Every history row, in installed_rank order ([] when the table does not exist; `exists`: already known)."""
        if not (self.exists() if exists is None else exists):
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
            rank, version, self.fit(abbreviate_description(description), DESCRIPTION_LIMIT), type_, self.fit(script, 1000), checksum, self.fit(self.session.user, 100)
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
            (checksum, self.fit(abbreviate_description(description), DESCRIPTION_LIMIT), type_, rank),
        )

    def delete_rank(self, rank: int) -> None:
        self.session.execute(f'delete from {self.qualified} where "installed_rank" = %s', (rank,))

    def audit_statement(self, record: AuditRecord) -> tuple[str, tuple]:
        """The insert of one audit row, as (sql, params); finished_at None: the server's clock."""
        owner = f', "{OWNER_COLUMN}"' if self.owned else ""
        return (
            f'insert into {self.audit_qualified} ("run_id", "source", "commit_id", "commit_author", "commit_message", '
            f'"script", "version", "checksum", "status", "error", "started_at", "finished_at", "installed_by", "target"{owner}) '
            f"values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {'%s' if record.finished_at else SERVER_NOW}, %s, %s"
            f"{', %s' if self.owned else ''})",
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
                *([self.fit(self.table, 128)] if self.owned else []),
            ),
        )

    def successful_attempts(self) -> dict[tuple[str, int | None], AppliedAttempt]:
        """The latest successful audit row of each (script, checksum): which run applied it, from which commit."""
        if not self._table_exists(AUDIT_TABLE):
            return {}
        try:
            rows = self._successes()
        except SqlError as exc:
            if exc.sqlstate != UNDEFINED_COLUMN or not self.owned:
                raise
            self.session.rollback()
            self.owned = False
            rows = self._successes()
        return {(row[0], row[1]): AppliedAttempt(*row[2:]) for row in rows}

    def _successes(self) -> list[tuple]:
        mine, params = self._mine("")
        return self.session.query(
            f'select "script", "checksum", "run_id", "source", "commit_id", "commit_author", "finished_at" '
            f'from {self.audit_qualified} where "status" = %s{mine} order by "finished_at"',
            (SUCCESS, *params),
        )

    def _owner_filter(self) -> tuple[str, tuple]:
        return (f' and "{OWNER_COLUMN}" = %s', (self.fit(self.table, 128),)) if self.owned else ("", ())

    def outcome_statement(
        self, run_id: str, script: str, status: str, error: str, finished_at: datetime
    ) -> tuple[str, tuple]:
        """The update of a STARTED row (this run's attempt at `script`) to its outcome, as (sql, params)."""
        owner, params = self._owner_filter()
        return (
            f'update {self.audit_qualified} set "status" = %s, "error" = %s, "finished_at" = %s '
            f'where "run_id" = %s and "script" = %s and "status" = %s{owner}',
            (status, self.fit(error, 65535), finished_at, self.fit(run_id, 64), self.fit(script, 1000), STARTED, *params),
        )

    def close_interrupted(self) -> int:
        """Mark this history table's STARTED rows INTERRUPTED; call it holding the run lock.

        The lock means no other migrator of this table is running, so a row still STARTED belongs to a process
        that died (killed, or its connection lost) before it could record how its attempt ended.
        """
        owner, params = self._owner_filter()
        error = (
            "interrupted: the run ended before it recorded this attempt's outcome (killed, or its connection was "
            "lost); found by the next run. The script runs outside a transaction, so the statements before the "
            "interruption may be applied: check, undo by hand if needed, then `dbops repair` and migrate again."
        )
        return self.session.execute(
            f'update {self.audit_qualified} set "status" = %s, "error" = %s where "status" = %s{owner}',
            (INTERRUPTED, error, STARTED, *params),
        )

    def last_failures(self, scripts: list[str] | None = None) -> dict[str, Attempt]:
        """Each script (of `scripts`, or any) whose last attempt did not succeed, with that attempt: one query.

        Rows of another history table of the schema are left out; rows from before the owner column count. An audit
        table not upgraded yet (no owner column: no run of this version since) is read as a whole.
        """
        names = None if scripts is None or len(scripts) > SCRIPTS_BY_NAME else [self.fit(n, 1000) for n in scripts]
        try:
            rows = self._last_attempts(names)
        except SqlError as exc:
            if exc.sqlstate != UNDEFINED_COLUMN or not self.owned:
                raise
            self.session.rollback()
            self.owned = False
            rows = self._last_attempts(names)
        return {
            script: Attempt(script, status, at, run_id or "", source or "", commit or "", error or "")
            for script, status, at, run_id, source, commit, error in rows
        }

    def _last_attempts(self, names: list[str] | None) -> list[tuple]:
        """The last attempt of each script whose last attempt is not a success (oldest first).

        Grouped, not ranked: the audit table grows by a row per script and run, and a hash aggregate over it costs
        less than sorting it by script (50,000 rows: 26 ms against 190 ms); `names` narrows it further.
        """
        failed = 'case when "status" <> %s then "started_at" end'
        succeeded = 'case when "status" = %s then "started_at" end'
        inner, inner_params = self._mine("")
        outer, outer_params = self._mine("a.")
        if names:
            inner += f' and "script" in ({", ".join(["%s"] * len(names))})'
            inner_params += tuple(names)
        return self.session.query(
            f'select a."script", a."status", a."finished_at", a."run_id", a."source", a."commit_id", a."error" '
            f'from {self.audit_qualified} a join (select "script", max({failed}) as "last_failed" '
            f'from {self.audit_qualified} where true{inner} group by "script" '
            f"having max({failed}) > coalesce(max({succeeded}), timestamp '1900-01-01')"
            f') f on a."script" = f."script" and a."started_at" = f."last_failed" '
            f'where a."status" <> %s{outer} order by a."started_at", a."finished_at"',
            (SUCCESS, *inner_params, SUCCESS, SUCCESS, SUCCESS, *outer_params),
        )

    def _mine(self, prefix: str) -> tuple[str, tuple]:
        """A filter for this history table's audit rows, and those from before the owner column."""
        if not self.owned:
            return "", ()
        column = f'{prefix}"{OWNER_COLUMN}"'
        return f" and ({column} = %s or {column} is null)", (self.fit(self.table, 128),)
