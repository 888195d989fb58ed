"""The warehouse/<schema>/<table> assets after a migrate: one observation per table or view the applied
scripts touched, with its live columns (Dagster's column schema, which the UI draws as a table), its
kind and the script that last changed it. The columns come from drift.live_catalog, the catalog read
the schema snapshot already takes. An observation that would repeat the asset's latest one (the same
columns, status, kind and script: the next environment of a fleet, migrated to the same shape) is not
recorded again.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from dagster import AssetKey, AssetObservation, DagsterInstance, MetadataValue, TableColumn, TableColumnConstraints, TableSchema

from dbops.orchestration.drift import ObjectShape
from dbops.orchestration.lineage import DROPPED, TableRef, Touch, dialect_for, script_facts
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.translator import MigrationTranslator
from dbops.scripts.migrations import Migration
from dbops.targets.base import Dialect

COLUMN_SCHEMA = "dagster/column_schema"
TABLE_NAME = "dagster/table_name"
PRESENT, MISSING = "present", "missing"


class ScriptLineage:
    """The objects each script touches: the loaded project's facts when the script's SQL is the one loaded,
    tokenized afresh otherwise (a script new to the code location, or changed in the run's commit)."""

    def __init__(self, project: MigrationProject | None, dialect: Dialect, default_schema: str) -> None:
        self.loaded = {m.path: m for m in project.migrations} if project else {}
        self.facts = project.facts if project else {}
        self.dialect = dialect
        self.default_schema = default_schema

    def touches(self, migration: Migration) -> list[Touch]:
        loaded = self.loaded.get(migration.path)
        if loaded is not None and loaded.sql == migration.sql:
            return self.facts[migration.path].touches
        return script_facts(migration.sql, dialect_for(self.dialect), self.default_schema).touches


def last_touches(migrations: Iterable[Migration], lineage: ScriptLineage) -> dict[TableRef, tuple[Migration, Touch]]:
    """Each object the scripts create, alter or drop, with the last script (in the order applied) that did."""
    found: dict[TableRef, tuple[Migration, Touch]] = {}
    for migration in migrations:
        for touch in lineage.touches(migration):
            found[touch.table] = (migration, touch)
    return dict(sorted(found.items()))


def column_schema(shape: ObjectShape | None) -> TableSchema:
    """The columns of a live table or view in Dagster's form; none for an object that is gone."""
    described = shape.described if shape else ()
    return TableSchema(
        columns=[
            TableColumn(c.name, c.data_type, constraints=TableColumnConstraints(nullable=c.nullable)) for c in described
        ]
    )


def table_observation(
    key: AssetKey, table: TableRef, migration: Migration, touch: Touch, shape: ObjectShape | None
) -> AssetObservation:
    """What the catalog says of one touched object after the run.

    A dropped object is observed too (status `dropped`, no columns), so the UI stops showing the columns
    an earlier observation recorded; `missing` means the script created or altered it but the catalog has
    no such object (created in another schema than its name says, e.g. through the search_path).
    """
    if shape is not None:
        status, kind = PRESENT, shape.kind
        what = f"{kind.capitalize()} {table}: {len(shape.described)} column(s), last changed by {migration.path} ({touch.action})"
    elif touch.action == DROPPED:
        status, kind = DROPPED, touch.kind
        what = f"{kind.capitalize()} {table}: dropped by {migration.path}"
    else:
        status, kind = MISSING, touch.kind
        what = f"{kind.capitalize()} {table}: {touch.action} by {migration.path}, but not in the catalog after the run"
    return AssetObservation(
        asset_key=key,
        description=what,
        metadata={
            TABLE_NAME: str(table),
            COLUMN_SCHEMA: MetadataValue.table_schema(column_schema(shape)),
            "object": kind,
            "status": status,
            "script": migration.script,
            "action": touch.action,
        },
    )


def table_observations(
    translator: MigrationTranslator,
    lineage: ScriptLineage,
    applied: Iterable[Migration],
    shapes: Mapping[str, ObjectShape],
) -> list[AssetObservation]:
    """One observation per object the applied scripts touched, against the catalog read after them."""
    return [
        table_observation(translator.get_table_key(table), table, migration, touch, shapes.get(str(table)))
        for table, (migration, touch) in last_touches(applied, lineage).items()
    ]


def new_observations(instance: DagsterInstance, observations: list[AssetObservation]) -> list[AssetObservation]:
    """The observations that say something their assets' latest observations do not."""
    return [o for o in observations if _seen(o) != _seen(_latest(instance, o.asset_key))]


def _latest(instance: DagsterInstance, key: AssetKey) -> AssetObservation | None:
    records = instance.fetch_observations(key, limit=1).records
    return records[0].asset_observation if records else None


def _seen(observation: AssetObservation | None) -> tuple | None:
    """What an observation says, comparable across a storage round trip."""
    if observation is None:
        return None
    values = {k: getattr(v, "value", v) for k, v in observation.metadata.items()}
    schema = values.get(COLUMN_SCHEMA)
    columns = tuple((c.name, c.type, c.constraints.nullable) for c in schema.columns) if isinstance(schema, TableSchema) else None
    return (columns, *(values.get(k) for k in (TABLE_NAME, "object", "status", "script", "action")))
