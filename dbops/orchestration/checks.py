"""Asset checks: each applied script still matches its file (blocking), and the schema has not drifted."""
from __future__ import annotations

from collections.abc import Iterator

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    multi_asset_check,
)

from dbops.engine.history import History
from dbops.engine.plan import PlanEntry
from dbops.errors import DbopsError
from dbops.orchestration.apply import failure
from dbops.orchestration.drift import SnapshotStore, diff, live_catalog
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.translator import MigrationTranslator

CHECKSUM_CHECK = "checksum"
DRIFT_CHECK = "schema_drift"
# Building a job costs Dagster (checks of one definition) x (their inputs); bounded by splitting the checks.
CHECKS_PER_DEFINITION = 200


def checksum_checks(project: MigrationProject, translator: MigrationTranslator) -> list[AssetsDefinition]:
    """One blocking check per script (an applied script's recorded checksum equals its file's), in groups of 200."""
    keys = [translator.get_asset_key(m) for m in project.migrations]
    groups = [keys[i : i + CHECKS_PER_DEFINITION] for i in range(0, len(keys), CHECKS_PER_DEFINITION)]
    if len(groups) == 1:
        return [_checksum_checks(groups[0], translator, "checksum_checks")]
    return [_checksum_checks(group, translator, f"checksum_checks_{n:03d}") for n, group in enumerate(groups, start=1)]


def _checksum_checks(keys: list[AssetKey], translator: MigrationTranslator, name: str) -> AssetsDefinition:
    specs = [
        AssetCheckSpec(
            CHECKSUM_CHECK,
            asset=key,
            blocking=True,
            description="The checksum recorded when the script was applied equals the file's checksum now.",
        )
        for key in keys
    ]

    @multi_asset_check(specs=specs, name=name, can_subset=True, description="Applied scripts against their files.")
    def _checksums(context, dbops: DbopsResource) -> Iterator[AssetCheckResult]:
        try:
            engine = dbops.engine(context)
            plan = engine.plan()
        except DbopsError as exc:
            raise failure(exc) from None
        entries = {translator.get_asset_key(e.migration): e for e in plan.entries if e.migration is not None}
        for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            yield _checksum_result(check_key, entries.get(check_key.asset_key))

    return _checksums


def _checksum_result(check_key: AssetCheckKey, entry: PlanEntry | None) -> AssetCheckResult:
    if entry is None:
        return AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=CHECKSUM_CHECK,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description="the script is no longer in the locations; reload the code location",
        )
    metadata = {"state": entry.state, "file_checksum": MetadataValue.int(entry.migration.checksum), "script": entry.script}
    if entry.applied is not None and entry.applied.checksum is not None:
        metadata["applied_checksum"] = MetadataValue.int(entry.applied.checksum)
    if entry.problems:
        return AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=CHECKSUM_CHECK,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(f"{entry.path}: {problem}" for problem in entry.problems),
            metadata=metadata,
        )
    applied = entry.applied is not None and entry.applied.success
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=CHECKSUM_CHECK,
        passed=True,
        description=f"{entry.path}: applied, checksum {entry.migration.checksum} matches" if applied else f"{entry.path}: {entry.state}, not applied yet",
        metadata=metadata,
    )


def drift_check(asset: AssetKey, name: str = "schema_drift_check") -> AssetsDefinition:
    """The live catalog against the snapshot stored after the last migrate; names what was added, dropped or altered."""

    @multi_asset_check(
        specs=[
            AssetCheckSpec(
                DRIFT_CHECK,
                asset=asset,
                description="Tables and views match the snapshot taken after the last migrate (nothing changed by hand).",
            )
        ],
        name=name,
    )
    def _drift(context, dbops: DbopsResource) -> Iterator[AssetCheckResult]:
        settings = dbops.settings()
        try:
            engine = dbops.engine(context)
            with engine.session() as session:
                before = SnapshotStore(session, settings.schema).load()
                now = live_catalog(session, settings.schema, settings.table)
                history = History(session, settings.schema, settings.table)
                rank = history.next_rank() - 1 if history.exists() else 0
                session.rollback()
        except DbopsError as exc:
            raise failure(exc) from None
        if before is None:
            yield AssetCheckResult(
                asset_key=asset,
                check_name=DRIFT_CHECK,
                passed=True,
                description="no snapshot yet: the migrate job records one after it runs",
                metadata={"objects": MetadataValue.int(len(now))},
            )
            return
        drift = diff(before, now)
        note = ""
        if rank > before.installed_rank:
            note = (
                f" (history rows {before.installed_rank + 1}..{rank} were applied after the snapshot, not through the "
                "migrate job: their changes show as drift until the next migrate run)"
            )
        yield AssetCheckResult(
            asset_key=asset,
            check_name=DRIFT_CHECK,
            passed=not drift,
            severity=AssetCheckSeverity.ERROR,
            description=(f"schema drift since run {before.run_id[:8]}: {drift.describe()}{note}" if drift else f"no drift since run {before.run_id[:8]}"),
            metadata={
                "added": MetadataValue.json(drift.added),
                "dropped": MetadataValue.json(drift.dropped),
                "altered": MetadataValue.json(drift.altered),
                "snapshot_run": before.run_id,
                "snapshot_taken_at": str(before.taken_at),
                "objects": MetadataValue.int(len(now)),
            },
        )

    return _drift
