"""Migration checks as Dagster asset checks: one blocking check per query of `<script>.sql.check`, on its
migration's asset, in the migrations multi_asset (they run inside the migration's transaction, so they cannot
be a step of their own)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from dbops.engine.engine import Engine
from dbops.engine.recheck import applied_checks, recheck
from dbops.engine.verify import CheckOutcome, markdown_table
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.translator import MigrationTranslator
from dbops.scripts.migrations import Migration


def migration_check_specs(project: MigrationProject, translator: MigrationTranslator) -> list[AssetCheckSpec]:
    """The specs of every migration's checks, in apply order."""
    return [spec for migration in project.migrations for spec in translator.get_check_specs(migration)]


def always_check_keys(project: MigrationProject, translator: MigrationTranslator, always: bool) -> list[AssetCheckKey]:
    """The keys of the checks marked `-- dbops:always` (always=True) or of the others."""
    return [
        AssetCheckKey(translator.get_asset_key(m), c.name) for m in project.migrations for c in m.checks if c.always == always
    ]


def check_result(key: AssetKey, outcome: CheckOutcome) -> AssetCheckResult:
    """One check's evaluation: passed, or failed with its offending rows as a Markdown table (at most 10)."""
    check = outcome.check
    metadata: dict[str, object] = {
        "check": check.where,
        "always": check.always,
        "sql": MetadataValue.md(f"```sql\n{check.sql.strip()}\n```"),
    }
    if outcome.error:
        metadata["error"] = outcome.error
    elif not outcome.passed:
        metadata["rows_shown"] = MetadataValue.int(len(outcome.rows))
        metadata["more_rows"] = outcome.more
        metadata["offending_rows"] = MetadataValue.md(markdown_table(outcome.columns, outcome.rows, outcome.more))
    return AssetCheckResult(
        asset_key=key,
        check_name=check.name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR,
        description=outcome.summary(),
        metadata=metadata,
    )


def results_for(
    selected: Iterable[AssetCheckKey], key: AssetKey, outcomes: Iterable[CheckOutcome]
) -> Iterator[AssetCheckResult]:
    """The results of a migration's checks that the run selected."""
    chosen = set(selected)
    for outcome in outcomes:
        if AssetCheckKey(key, outcome.check.name) in chosen:
            yield check_result(key, outcome)


def rechecked_results(
    engine: Engine, translator: MigrationTranslator, wanted: set[AssetCheckKey]
) -> Iterator[AssetCheckResult]:
    """Run again, read only, the wanted checks of applied migrations (a check-only run: the validate job, or
    "Execute check" in the UI); the checks of a migration not applied get no result."""
    if not wanted:
        return
    todo = [(m, c) for m, c in applied_checks(engine, every=True) if AssetCheckKey(translator.get_asset_key(m), c.name) in wanted]
    for done in recheck(engine, todo):
        yield check_result(translator.get_asset_key(done.migration), done.outcome)


def keys_of(migration: Migration, translator: MigrationTranslator) -> set[AssetCheckKey]:
    key = translator.get_asset_key(migration)
    return {AssetCheckKey(key, c.name) for c in migration.checks}
