"""How scripts and tables become asset specs; subclass it to change keys, groups or metadata.

Modelled on dagster-dbt's DagsterDbtTranslator: one overridable method per aspect of a spec.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from dagster import AssetCheckSpec, AssetKey, AssetSpec, MetadataValue

from dbops.orchestration.lineage import ScriptFacts, TableRef, Touch
from dbops.scripts.migrations import REPEATABLE, Migration
from dbops.targets.base import Dialect

SQL_PREVIEW_CHARS = 4000
KINDS = {Dialect.POSTGRESQL: "postgres", Dialect.REDSHIFT: "redshift"}  # Dagster's kind icons
SCRIPT_METADATA = "dbops/script"


def script_keys(asset_graph: Any) -> dict[str, AssetKey]:
    """Script (path relative to its location) → asset key, for every migration asset of a loaded asset graph,
    whatever keys the translator gave them: each carries its script in `dbops/script` metadata."""
    mapping: dict[str, AssetKey] = {}
    for node in asset_graph.asset_nodes:
        script = node.metadata.get(SCRIPT_METADATA)
        if script is not None:
            mapping[str(getattr(script, "value", script))] = node.key
    return mapping


def asset_name(script: str) -> str:
    """The file's stem lower-cased, every character outside [a-z0-9_] replaced by `_`."""
    stem = PurePosixPath(script).name
    stem = stem[: -len(".sql")] if stem.lower().endswith(".sql") else stem
    return re.sub(r"[^a-z0-9_]", "_", stem.lower())


class MigrationTranslator:
    """Builds the AssetSpec of each script and of each table or view the scripts touch."""

    def __init__(
        self,
        key_prefix: Sequence[str] = ("migrations",),
        group_name: str = "migrations",
        table_key_prefix: Sequence[str] = ("warehouse",),
        table_group_name: str = "warehouse",
        dialect: Dialect = Dialect.POSTGRESQL,
        default_schema: str = "public",
        extra_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.key_prefix = tuple(key_prefix)
        self.group_name = group_name
        self.table_key_prefix = tuple(table_key_prefix)
        self.table_group_name = table_group_name
        self.dialect = dialect
        self.default_schema = default_schema
        self.extra_metadata = dict(extra_metadata or {})

    def get_asset_key(self, migration: Migration) -> AssetKey:
        return AssetKey([*self.key_prefix, asset_name(migration.script)])

    def get_group_name(self, migration: Migration) -> str:
        return self.group_name

    def get_code_version(self, migration: Migration) -> str:
        return str(migration.checksum)

    def get_kinds(self, migration: Migration) -> set[str]:
        return {"sql", KINDS.get(self.dialect, str(self.dialect))}

    def get_description(self, migration: Migration) -> str:
        kind = "Repeatable migration" if migration.kind == REPEATABLE else f"Migration version {migration.version}"
        return f"{kind}: {migration.description or migration.script} ({migration.path})"

    def get_tags(self, migration: Migration) -> dict[str, str]:
        return {}

    def get_deps(self, migration: Migration) -> list[AssetKey]:
        """Extra upstream assets of a script (besides the script before it); none by default."""
        return []

    def get_metadata(self, migration: Migration, facts: ScriptFacts) -> dict[str, Any]:
        sql = migration.sql
        if len(sql) > SQL_PREVIEW_CHARS:
            sql = sql[:SQL_PREVIEW_CHARS] + f"\n-- … {len(migration.sql) - SQL_PREVIEW_CHARS} more characters in {migration.path}"
        return {
            "version": migration.version.text if migration.version else "",
            "type": "repeatable" if migration.kind == REPEATABLE else "versioned",
            "script": migration.path,
            SCRIPT_METADATA: migration.script,
            "checksum": migration.checksum,
            "statements": facts.statements,
            "sql": MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
            **self.extra_metadata,
        }

    def get_asset_spec(self, migration: Migration, facts: ScriptFacts, previous: AssetKey | None) -> AssetSpec:
        """The spec of one script: deps on the script before it (and on get_deps), skippable."""
        deps = ([previous] if previous else []) + self.get_deps(migration)
        return AssetSpec(
            key=self.get_asset_key(migration),
            deps=deps,
            description=self.get_description(migration),
            metadata=self.get_metadata(migration, facts),
            group_name=self.get_group_name(migration),
            code_version=self.get_code_version(migration),
            kinds=self.get_kinds(migration),
            tags=self.get_tags(migration),
            skippable=True,
        )

    def get_check_specs(self, migration: Migration) -> list[AssetCheckSpec]:
        """One blocking check per query of the script's `.sql.check` file, on the script's asset."""
        key = self.get_asset_key(migration)
        return [
            AssetCheckSpec(
                check.name,
                asset=key,
                blocking=True,
                description=f"{check.title} ({check.where}): returns no rows right after the migration"
                + (", and always after (-- dbops:always)" if check.always else ""),
                metadata={"check": check.where, "always": check.always},
            )
            for check in migration.checks
        ]

    def get_table_key(self, table: TableRef) -> AssetKey:
        return AssetKey([*self.table_key_prefix, *table.key_parts])

    def get_table_spec(self, table: TableRef, touches: Iterable[tuple[AssetKey, Migration, Touch]]) -> AssetSpec:
        """An external asset for a table or view, downstream of every script that touches it."""
        touches = list(touches)
        kind = next((t.kind for _, _, t in reversed(touches) if t.action == "created"), touches[-1][2].kind)
        history = [f"{t.action} by {m.path}" for _, m, t in touches]
        return AssetSpec(
            key=self.get_table_key(table),
            deps=list(dict.fromkeys(key for key, _, _ in touches)),
            description=f"{kind.capitalize()} {table}: " + "; ".join(history),
            metadata={"schema": table.schema, "name": table.name, "object": kind, "history": MetadataValue.json(history)},
            group_name=self.table_group_name,
            kinds={kind, KINDS.get(self.dialect, str(self.dialect))},
        )
