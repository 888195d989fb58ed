"""The plan of a review: the scripts that would run on the target, in order, how, and what in them is risky."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbops.engine.history import AppliedMigration
from dbops.engine.plan import PlanEntry, build_plan
from dbops.lint.checks import script_of
from dbops.lint.rules import ColumnTypes, StatementContext, check_destructive
from dbops.scripts.migrations import Catalog, Migration, RowType


@dataclass(frozen=True)
class PlannedScript:
    """One script that would run: in a transaction or in autocommit, its non-transactional and destructive statements."""

    path: str
    version: str | None
    state: str
    in_transaction: bool
    non_transactional: list[tuple[int, str]] = field(default_factory=list)
    destructive: list[tuple[int, str]] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "transaction" if self.in_transaction else "autocommit"

    def as_dict(self) -> dict[str, Any]:
        return {"script": self.path, "version": self.version, "state": self.state, "mode": self.mode,
                "non_transactional": [{"line": n, "statement": s} for n, s in self.non_transactional],
                "destructive": [{"line": n, "statement": s} for n, s in self.destructive]}


def planned(entries: list[PlanEntry], dialect: str | None) -> list[PlannedScript]:
    """The pending entries as the plan shows them (`dialect` None: a statement either dialect refuses in a transaction)."""
    return [_planned(e.migration, e.state, dialect) for e in entries if e.migration is not None]


def _planned(m: Migration, state: str, dialect: str | None) -> PlannedScript:
    odd = [(s.line, s.non_transactional_on(dialect) if dialect else s.non_transactional) for s in m.non_transactional_on(dialect)]
    script = script_of(m)
    known = ColumnTypes()
    destructive = [(s.line + hit.offset, hit.message) for s in m.statements
                   for hit in check_destructive(StatementContext(script, s, None, known))]
    return PlannedScript(m.path, m.version.text if m.version else None, state, m.in_transaction_on(dialect),
                         [(line, str(kind)) for line, kind in odd], destructive)


def rows_of(catalog: Catalog) -> list[AppliedMigration]:
    """History rows as a database deployed from `catalog` would hold them (every script applied, in order)."""
    rows = []
    for rank, m in enumerate(catalog.versioned + catalog.repeatable, start=1):
        rows.append(AppliedMigration(rank, m.version.text if m.version else None, m.description,
                                     RowType.SQL, m.script, m.checksum, "", None, 0, True))
    return rows


def pending_after(head: Catalog, base: Catalog | None, out_of_order: bool) -> list[PlanEntry]:
    """What would run on a database deployed from `base` (None: an empty one): new versions, changed repeatables."""
    rows = rows_of(base) if base is not None else []
    return build_plan(head, rows, out_of_order=out_of_order or base is None).pending()

