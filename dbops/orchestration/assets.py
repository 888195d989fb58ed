"""Migrations as assets: one multi_asset with a skippable spec per script, plus the tables they touch."""
from __future__ import annotations

from collections import defaultdict

from dagster import AssetKey, AssetsDefinition, AssetSpec, PartitionsDefinition, multi_asset

from dbops.errors import ConfigError
from dbops.orchestration.lineage import TableRef, Touch
from dbops.orchestration.migration_checks import migration_check_specs
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.translator import MigrationTranslator
from dbops.orchestration.warehouse import ScriptLineage
from dbops.scripts.migrations import Migration

RESOURCE_KEY = "dbops"


def migration_specs(project: MigrationProject, translator: MigrationTranslator) -> list[AssetSpec]:
    """One spec per script, each depending on the one before it (versioned, then repeatable)."""
    specs: list[AssetSpec] = []
    owners: dict[AssetKey, Migration] = {}
    previous: AssetKey | None = None
    for migration in project.migrations:
        spec = translator.get_asset_spec(migration, project.facts[migration.path], previous)
        if spec.key in owners:
            raise ConfigError(
                f"{owners[spec.key].path} and {migration.path} both become asset {spec.key.to_user_string()}; "
                "rename one of them (asset names ignore case and characters outside a-z, 0-9 and _)"
            )
        owners[spec.key] = migration
        specs.append(spec)
        previous = spec.key
    return specs


def migration_assets(
    project: MigrationProject,
    translator: MigrationTranslator | None = None,
    name: str = "migrations",
    partitions_def: PartitionsDefinition | None = None,
    pool: str | None = None,
) -> AssetsDefinition:
    """The `migrations` multi_asset: applying a selection applies those scripts (and fails naming a skipped predecessor).

    With environments, `partitions_def` has one partition per environment (a run migrates one) and `pool` is the
    concurrency pool that bounds how many environments migrate at once."""
    translator = translator or MigrationTranslator(dialect=project.dialect, default_schema=project.default_schema)
    specs = migration_specs(project, translator)
    if not specs:
        raise ConfigError("no migration scripts found; add V<version>__<description>.sql files to the locations")
    known = {spec.key for spec in specs}
    lineage = ScriptLineage(project, translator.dialect, translator.default_schema)

    @multi_asset(
        name=name,
        specs=specs,
        check_specs=migration_check_specs(project, translator),
        can_subset=True,
        partitions_def=partitions_def,
        pool=pool,
        description="Applies the selected pending migrations in order and records each in the history table.",
    )
    def _migrations(context, dbops: DbopsResource):
        yield from dbops.migrate(context, translator, known, lineage, project)

    return _migrations


def warehouse_assets(project: MigrationProject, translator: MigrationTranslator | None = None) -> list[AssetSpec]:
    """External assets for the tables and views the scripts create, alter or drop, downstream of those scripts."""
    translator = translator or MigrationTranslator(dialect=project.dialect, default_schema=project.default_schema)
    touched: dict[TableRef, list[tuple[AssetKey, Migration, Touch]]] = defaultdict(list)
    for migration in project.migrations:
        key = translator.get_asset_key(migration)
        for touch in project.facts[migration.path].touches:
            touched[touch.table].append((key, migration, touch))
    specs: dict[AssetKey, AssetSpec] = {}
    for table in sorted(touched):
        spec = translator.get_table_spec(table, touched[table])
        specs.setdefault(spec.key, spec)
    return list(specs.values())
