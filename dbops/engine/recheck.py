"""`dbops check`: run again the checks of applied migrations that say they always hold (`-- dbops:always`)."""
from __future__ import annotations

from dataclasses import dataclass

from dbops.engine.engine import Engine
from dbops.engine.plan import SUCCESS
from dbops.engine.search_path import search_path_statement
from dbops.engine.verify import CheckOutcome, run_check
from dbops.scripts.checks import Check
from dbops.scripts.migrations import Migration


@dataclass(frozen=True)
class Rechecked:
    """One check run again, with the migration it belongs to."""

    migration: Migration
    outcome: CheckOutcome


def applied_checks(engine: Engine, every: bool = False) -> list[tuple[Migration, Check]]:
    """The checks of the applied migrations (state Success) in apply order: those marked always, or `every` one."""
    plan = engine.plan()
    applied = [e.migration for e in plan.entries if e.state == SUCCESS and e.migration is not None]
    return [(m, c) for m in applied for c in m.checks if every or c.always]


def recheck(engine: Engine, checks: list[tuple[Migration, Check]]) -> list[Rechecked]:
    """Run each check on one session with the default schema first on its search path, each in a transaction
    that is rolled back (a check changes nothing, and one that errors does not stop the others)."""
    if not checks:
        return []
    results: list[Rechecked] = []
    with engine.session() as session:
        session.execute(search_path_statement(session, engine.settings.schema))
        session.commit()
        for migration, check in checks:
            results.append(Rechecked(migration, run_check(session, check)))
            session.rollback()
    return results
