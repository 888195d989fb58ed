"""Match scripts with history rows and give each a state, as Flyway's `info` does."""
from __future__ import annotations

from dataclasses import dataclass, field

from dbops.engine.history import AppliedMigration, Attempt
from dbops.scripts.migrations import DESCRIPTION_LIMIT, Catalog, Migration, RowType, Version, abbreviate_description

PENDING = "Pending"
SUCCESS = "Success"
FAILED = "Failed"
MISSING = "Missing"
FUTURE = "Future"
OUTDATED = "Outdated"
SUPERSEDED = "Superseded"
IGNORED = "Ignored"
BASELINE_STATE = "Baseline"
BELOW_BASELINE = "Below Baseline"
ABOVE_TARGET = "Above Target"
UNDONE = "Undone"
DELETED = "Deleted"
AVAILABLE = "Available"


@dataclass
class PlanEntry:
    """A script, a history row, or both, with its state and what is wrong with it."""

    state: str
    migration: Migration | None = None
    applied: AppliedMigration | None = None
    problems: list[str] = field(default_factory=list)
    last_failure: Attempt | None = None  # set by attach_failures, for a pending or failed script

    @property
    def version(self) -> str | None:
        if self.migration and self.migration.version:
            return self.migration.version.text
        return self.applied.version if self.applied else None

    @property
    def description(self) -> str:
        return self.migration.description if self.migration else self.applied.description if self.applied else ""

    @property
    def type(self) -> str:
        return self.applied.type if self.applied else self.migration.history_type if self.migration else ""

    @property
    def script(self) -> str:
        return self.migration.script if self.migration else self.applied.script if self.applied else ""

    @property
    def path(self) -> str:
        return self.migration.path if self.migration else self.script

    @property
    def checksum(self) -> int | None:
        return self.migration.checksum if self.migration else self.applied.checksum if self.applied else None

    @property
    def is_pending(self) -> bool:
        return self.state in (PENDING, OUTDATED)


@dataclass
class Plan:
    """Every script and history row, in the order `info` shows them."""

    entries: list[PlanEntry]
    has_history: bool

    def pending(self) -> list[PlanEntry]:
        return [e for e in self.entries if e.is_pending and e.migration is not None]

    def problems(self) -> list[str]:
        return [f"{e.path}: {p}" for e in self.entries for p in e.problems]

    def failed_attempts(self) -> list[PlanEntry]:
        """Entries whose last attempt failed, or never recorded its outcome."""
        return [e for e in self.entries if e.last_failure is not None]


def attach_failures(plan: Plan, failures: dict[str, Attempt]) -> None:
    """Give each pending or failed script its last attempt when that did not succeed.

    A script applied since (Success) shows none: its last attempt succeeded.
    """
    for entry in plan.entries:
        if entry.is_pending or entry.state == FAILED:
            entry.last_failure = failures.get(entry.script)


def unfinished(plan: Plan) -> list[str]:
    """The scripts that can have a failed last attempt: pending or failed ones."""
    return [e.script for e in plan.entries if e.is_pending or e.state == FAILED]


def realigned(row: AppliedMigration, migration: Migration) -> str:
    """What `repair` changes in an applied row to match its file: the checksum, the description, the type."""
    changes = []
    if row.checksum != migration.checksum:
        changes.append(f"checksum {_checksum(row.checksum)} -> {migration.checksum}")
    if row.description not in recorded_forms(migration.description):
        changes.append(f"description '{row.description}' -> '{migration.description}'")
    if row.type != migration.history_type:
        changes.append(f"type {row.type} -> {migration.history_type}")
    return ", ".join(changes)


def _checksum(value: int | None) -> str:
    return "none (NULL)" if value is None else str(value)


def recorded_forms(description: str) -> set[str]:
    """How a script's description reads back from the history table's VARCHAR(200) (characters on PostgreSQL, UTF-8
    bytes on Redshift): whole, abbreviated as Flyway writes it (197 characters and `...`), or cut to fit the column
    (as dbops wrote it before it abbreviated)."""
    forms = set()
    for form in (description, abbreviate_description(description), description[:DESCRIPTION_LIMIT]):
        forms.add(form)
        data = form.encode("utf-8", "surrogatepass")
        if len(data) > DESCRIPTION_LIMIT:
            forms.add(data[:DESCRIPTION_LIMIT].decode("utf-8", "ignore"))
    return forms


def _version_of(row: AppliedMigration) -> Version | None:
    try:
        return Version.parse(row.version) if row.version else None
    except ValueError:
        return None


def build_plan(
    catalog: Catalog,
    rows: list[AppliedMigration],
    *,
    out_of_order: bool = False,
    target: Version | None = None,
    has_history: bool = True,
) -> Plan:
    """States for every script and row (pure: no database access)."""
    entries: list[PlanEntry] = [PlanEntry(SUCCESS, applied=row) for row in rows if row.type == RowType.SCHEMA]
    by_version, repeatable_rows, baseline = _group_rows([r for r in rows if r.type != RowType.SCHEMA])
    current = _current_rows(by_version, entries)
    pending_baseline = None
    if not any(r.success for r in current.values()) and catalog.baseline:
        candidates = [b for b in catalog.baseline if target is None or b.version <= target]
        if candidates:
            pending_baseline = candidates[-1]
            baseline = pending_baseline.version
    entries += _versioned_entries(catalog, current, baseline, target, out_of_order)
    if pending_baseline is not None:
        entries.insert(
            next((i for i, e in enumerate(entries) if e.state == PENDING), len(entries)),
            PlanEntry(PENDING, migration=pending_baseline),
        )
    else:
        entries += [PlanEntry(AVAILABLE, migration=m) for m in catalog.baseline]
    entries += _repeatable_entries(catalog, repeatable_rows)
    entries += [PlanEntry(AVAILABLE, migration=m) for m in catalog.undo]
    return Plan(entries=entries, has_history=has_history)


def _group_rows(
    rows: list[AppliedMigration],
) -> tuple[dict[Version, list[AppliedMigration]], dict[str, list[AppliedMigration]], Version | None]:
    """Rows by version, repeatable rows by description, and the highest successful baseline."""
    by_version: dict[Version, list[AppliedMigration]] = {}
    repeatable_rows: dict[str, list[AppliedMigration]] = {}
    baseline: Version | None = None
    for row in rows:
        version = _version_of(row)
        if row.type in (RowType.BASELINE, RowType.SQL_BASELINE) and row.success and version:
            baseline = max(baseline, version) if baseline else version
        if version is None:
            repeatable_rows.setdefault(row.description, []).append(row)
        else:
            by_version.setdefault(version, []).append(row)
    return by_version, repeatable_rows, baseline


def _current_rows(by_version: dict[Version, list[AppliedMigration]], entries: list[PlanEntry]) -> dict[Version, AppliedMigration]:
    """The row that counts for each version: the last one, unless an undo or delete marker follows it.
    The rows it replaces go to `entries` as Undone (or Deleted)."""
    current: dict[Version, AppliedMigration] = {}
    for version, version_rows in by_version.items():
        for row in version_rows:
            if row.type in (RowType.UNDO_SQL, RowType.DELETE) and row.success:
                entries.append(PlanEntry(UNDONE if row.type == RowType.UNDO_SQL else DELETED, applied=row))
                current.pop(version, None)
            elif row.type not in (RowType.UNDO_SQL, RowType.DELETE):
                if version in current:
                    entries.append(PlanEntry(UNDONE, applied=current[version]))
                current[version] = row
    return current


def _versioned_entries(
    catalog: Catalog,
    current: dict[Version, AppliedMigration],
    baseline: Version | None,
    target: Version | None,
    out_of_order: bool,
) -> list[PlanEntry]:
    latest_applied = max((v for v, r in current.items() if r.success), default=None)
    files = {m.version: m for m in catalog.versioned}
    latest_file = max(files, default=None)
    entries: list[PlanEntry] = []
    for version in sorted(set(files) | set(current)):
        migration, row = files.get(version), current.get(version)
        if row is not None:
            entries.append(_applied_entry(migration, row, latest_file))
        elif migration is None:
            continue
        elif baseline is not None and version <= baseline:
            entries.append(PlanEntry(BELOW_BASELINE, migration=migration))
        elif target is not None and version > target:
            entries.append(PlanEntry(ABOVE_TARGET, migration=migration))
        elif latest_applied is not None and version < latest_applied and not out_of_order:
            problem = (
                f"version {version} is older than the latest applied version {latest_applied} and was never "
                "applied; apply it with --out-of-order, or give it a newer version"
            )
            entries.append(PlanEntry(IGNORED, migration=migration, problems=[problem]))
        else:
            entries.append(PlanEntry(PENDING, migration=migration))
    return entries


def _repeatable_entries(catalog: Catalog, repeatable_rows: dict[str, list[AppliedMigration]]) -> list[PlanEntry]:
    entries: list[PlanEntry] = []
    files_by_description = {form: m for m in catalog.repeatable for form in recorded_forms(m.description)}
    for migration in catalog.repeatable:
        recorded = next((f for f in recorded_forms(migration.description) if f in repeatable_rows), migration.description)
        history = repeatable_rows.get(recorded, [])
        entries += [PlanEntry(SUPERSEDED, applied=old) for old in history[:-1]]
        last = history[-1] if history else None
        if last is None:
            entries.append(PlanEntry(PENDING, migration=migration))
        elif not last.success:
            entries.append(_failed(migration, last))
        elif last.checksum != migration.checksum:
            entries.append(PlanEntry(OUTDATED, migration=migration, applied=last))
        else:
            entries.append(PlanEntry(SUCCESS, migration=migration, applied=last))
    for description, history in repeatable_rows.items():
        if description in files_by_description:
            continue
        entries += [PlanEntry(SUPERSEDED, applied=old) for old in history[:-1]]
        last = history[-1]
        if not last.success:
            entries.append(_failed(None, last))
        else:
            problem = f"applied repeatable '{description}' has no script any more ({last.script})"
            entries.append(PlanEntry(MISSING, applied=last, problems=[problem]))
    return entries


def _failed(migration: Migration | None, row: AppliedMigration) -> PlanEntry:
    return PlanEntry(
        FAILED,
        migration=migration,
        applied=row,
        problems=[
            f"{row.script} failed on {row.installed_on:%Y-%m-%d %H:%M:%S} and may be partly applied; "
            "clean up what it did, then run `dbops repair` and migrate again"
            if row.installed_on
            else f"{row.script} failed; run `dbops repair` and migrate again"
        ],
    )


def _applied_entry(migration: Migration | None, row: AppliedMigration, latest_file: Version | None) -> PlanEntry:
    if row.type in (RowType.BASELINE, RowType.SQL_BASELINE) and row.success:
        return PlanEntry(BASELINE_STATE, applied=row)
    if not row.success:
        return _failed(migration, row)
    if migration is None:
        version = _version_of(row)
        if latest_file is None or (version is not None and version > latest_file):
            return PlanEntry(FUTURE, applied=row)
        return PlanEntry(
            MISSING,
            applied=row,
            problems=[f"version {row.version} ({row.script}) was applied but its script is gone; restore it, or run `dbops repair` to mark it deleted"],
        )
    entry = PlanEntry(SUCCESS, migration=migration, applied=row)
    if row.checksum != migration.checksum:
        entry.problems.append(
            f"checksum mismatch for version {row.version}: applied {_checksum(row.checksum)}, file now {migration.checksum}; "
            "revert the file (put the change in a new migration) or run `dbops repair` to accept it"
        )
    if row.description not in recorded_forms(migration.description):
        entry.problems.append(
            f"description mismatch for version {row.version}: applied '{row.description}', file '{migration.description}'; "
            "rename the file back, or run `dbops repair` to record the new description"
        )
    if row.type != migration.history_type:
        entry.problems.append(
            f"type mismatch for version {row.version}: applied {row.type}, file {migration.history_type}; "
            "run `dbops repair` to record the file's type"
        )
    return entry
