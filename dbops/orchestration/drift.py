"""Schema drift: the live catalog (tables, views, columns) against the snapshot taken after the last migrate.

The snapshot lives in the database, next to the history table (`dbops_schema_snapshot`, one row per
table or view), so every Dagster instance, CodeBuild included, compares against the same one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dbops.engine.history import AUDIT_TABLE, quote_ident
from dbops.targets.base import Dialect, Session

SNAPSHOT_TABLE = "dbops_schema_snapshot"
LOCK_TABLE = "dbops_lock"
DEFINITION_LIMIT = 65535
INSERT_BATCH = 200

_CATALOG_QUERY = """
select t.table_schema, t.table_name, t.table_type,
       c.column_name, c.data_type, c.character_maximum_length, c.numeric_precision, c.numeric_scale, c.is_nullable
from information_schema.tables t
left join information_schema.columns c on c.table_schema = t.table_schema and c.table_name = t.table_name
where t.table_schema not in ('information_schema', 'pg_catalog')
  and t.table_schema not like 'pg\\_%%'
  and t.table_type in ('BASE TABLE', 'VIEW')
order by t.table_schema, t.table_name, c.ordinal_position
"""


@dataclass(frozen=True)
class Column:
    """One column as the catalog describes it: name, type with its size, nullability."""

    name: str
    data_type: str
    nullable: bool

    @property
    def text(self) -> str:
        """`name type[(size)][ not null]`, the form snapshots store and compare."""
        return f"{self.name} {self.data_type}{'' if self.nullable else ' not null'}"


@dataclass(frozen=True)
class ObjectShape:
    """A table or view as the catalog describes it: kind plus its columns, in order.

    `columns` holds each column's text (what snapshots store); `described` the same columns as
    `Column`s when read from the live catalog (empty for a stored snapshot).
    """

    schema: str
    name: str
    kind: str
    columns: tuple[str, ...]
    described: tuple[Column, ...] = field(default=(), compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def definition(self) -> str:
        return "\n".join(self.columns)

    @property
    def fingerprint(self) -> str:
        return hashlib.md5(f"{self.kind}\n{self.definition}".encode()).hexdigest()


@dataclass
class CatalogSnapshot:
    """The shapes of every table and view, with when and after which history rank they were taken."""

    shapes: dict[str, ObjectShape]
    taken_at: datetime | None = None
    run_id: str = ""
    installed_rank: int = 0
    fingerprints: dict[str, str] = field(default_factory=dict)

    def fingerprint_of(self, qualified: str) -> str:
        return self.fingerprints.get(qualified) or self.shapes[qualified].fingerprint


@dataclass
class Drift:
    """Objects added, dropped or altered since the snapshot, by qualified name."""

    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    altered: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.dropped or self.altered)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("added: " + ", ".join(self.added))
        if self.dropped:
            parts.append("dropped: " + ", ".join(self.dropped))
        for name, changes in self.altered.items():
            parts.append(f"altered: {name} ({'; '.join(changes)})")
        return "; ".join(parts)


def _column(name: str, data_type: str, length: int | None, precision: int | None, scale: int | None, nullable: str) -> Column:
    size = ""
    if length:
        size = f"({length})"
    elif data_type.lower() in ("numeric", "decimal") and precision:
        size = f"({precision},{scale or 0})"
    return Column(name, f"{data_type}{size}", nullable == "YES")


def own_tables(history_table: str) -> set[str]:
    """dbops's bookkeeping tables, which the drift check ignores."""
    return {history_table, AUDIT_TABLE, SNAPSHOT_TABLE, LOCK_TABLE}


def live_catalog(session: Session, history_schema: str, history_table: str) -> dict[str, ObjectShape]:
    """Every table and view the session can see, outside the system schemas and dbops's own tables."""
    ignored = own_tables(history_table)
    columns: dict[tuple[str, str], list[Column]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for schema, name, table_type, column, data_type, length, precision, scale, nullable in session.query(_CATALOG_QUERY):
        if schema == history_schema and name in ignored:
            continue
        key = (schema, name)
        kinds[key] = "view" if table_type == "VIEW" else "table"
        columns.setdefault(key, [])
        if column is not None:
            columns[key].append(_column(column, data_type, length, precision, scale, nullable))
    return {
        f"{schema}.{name}": ObjectShape(schema, name, kinds[(schema, name)], tuple(c.text for c in found), tuple(found))
        for (schema, name), found in columns.items()
    }


def diff(before: CatalogSnapshot, now: dict[str, ObjectShape]) -> Drift:
    """What changed between a snapshot and the live catalog."""
    drift = Drift()
    drift.added = sorted(set(now) - set(before.shapes))
    drift.dropped = sorted(set(before.shapes) - set(now))
    for name in sorted(set(now) & set(before.shapes)):
        if now[name].fingerprint == before.fingerprint_of(name):
            continue
        old, new = before.shapes[name], now[name]
        changes: list[str] = []
        if old.kind != new.kind:
            changes.append(f"{old.kind} is now a {new.kind}")
        old_cols = {c.split(" ", 1)[0]: c for c in old.columns}
        new_cols = {c.split(" ", 1)[0]: c for c in new.columns}
        changes += [f"column {c} added" for c in new_cols if c not in old_cols]
        changes += [f"column {c} dropped" for c in old_cols if c not in new_cols]
        changes += [f"{old_cols[c]} -> {new_cols[c]}" for c in new_cols if c in old_cols and old_cols[c] != new_cols[c]]
        drift.altered[name] = changes or ["columns reordered"]
    return drift


class SnapshotStore:
    """Reads and replaces the stored snapshot through a session."""

    def __init__(self, session: Session, schema: str) -> None:
        self.session = session
        self.schema = schema
        self.qualified = f"{quote_ident(schema)}.{SNAPSHOT_TABLE}"

    def exists(self) -> bool:
        return bool(
            self.session.query(
                "select 1 from information_schema.tables where table_schema = %s and table_name = %s", (self.schema, SNAPSHOT_TABLE)
            )
        )

    def _create(self) -> None:
        text = "VARCHAR(65535)" if self.session.dialect == Dialect.REDSHIFT else "TEXT"
        self.session.execute(
            f"create table {self.qualified} (taken_at timestamp not null, run_id varchar(64) not null, "
            f"installed_rank int not null, object_schema varchar(128) not null, object_name varchar(128) not null, "
            f"object_kind varchar(10) not null, fingerprint varchar(32) not null, definition {text})"
        )

    def load(self) -> CatalogSnapshot | None:
        """The last snapshot, or None when none was taken yet."""
        if not self.exists():
            return None
        rows = self.session.query(
            f"select taken_at, run_id, installed_rank, object_schema, object_name, object_kind, fingerprint, definition "
            f"from {self.qualified}"
        )
        if not rows:
            return None
        snapshot = CatalogSnapshot(shapes={}, taken_at=rows[0][0], run_id=rows[0][1], installed_rank=rows[0][2])
        for _, _, _, schema, name, kind, fingerprint, definition in rows:
            if schema == "" and name == "":
                continue  # the marker row of an empty catalog
            shape = ObjectShape(schema, name, kind, tuple((definition or "").split("\n")) if definition else ())
            snapshot.shapes[shape.qualified] = shape
            snapshot.fingerprints[shape.qualified] = fingerprint
        return snapshot

    def save(self, shapes: dict[str, ObjectShape], run_id: str, installed_rank: int) -> None:
        """Replace the snapshot in one transaction (committed here)."""
        if not self.exists():
            self._create()
        self.session.execute(f"delete from {self.qualified}")
        taken_at = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = [
            (taken_at, run_id[:64], installed_rank, s.schema, s.name, s.kind, s.fingerprint, s.definition[:DEFINITION_LIMIT])
            for s in shapes.values()
        ] or [(taken_at, run_id[:64], installed_rank, "", "", "", "", "")]
        for start in range(0, len(rows), INSERT_BATCH):
            batch = rows[start : start + INSERT_BATCH]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch))
            self.session.execute(
                f"insert into {self.qualified} (taken_at, run_id, installed_rank, object_schema, object_name, object_kind, "
                f"fingerprint, definition) values {values}",
                [value for row in batch for value in row],
            )
        self.session.commit()
