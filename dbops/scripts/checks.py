"""Migration checks: queries in `<script>.sql.check` that must return no rows right after the script ran.

The file sits beside its script, as a `.sql.conf` does: Flyway reads only names ending in `.sql` (so
`V3__x.sql.check` is invisible to it, where `V3__x.check.sql` would be a second V3), every source
carries it from the same commit, and a hidden folder hides both. Each statement of the file is one
check (dbt's convention: the query selects the offending rows); `-- dbops:always` on a check, or
just above it, says it holds for good, so `dbops check` re-runs it on applied migrations.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dbops.errors import ScriptError
from dbops.scripts.statements import split

CHECK_SUFFIX = ".sql.check"
ALWAYS_MARK = "dbops:always"
RESERVED_NAMES = frozenset({"checksum", "schema_drift"})  # the asset checks dbops defines on every migration
MAX_NAME = 48
_ALWAYS = re.compile(r"(--|/\*)\s*dbops:always\b", re.I)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_QUERY = re.compile(r"(SELECT|WITH|VALUES|TABLE)\b|\(")


@dataclass(frozen=True)
class Check:
    """One check of a migration: where it is written, its query, and whether it always holds."""

    path: str
    line: int
    sql: str
    name: str
    title: str
    always: bool = False

    @property
    def where(self) -> str:
        """`sql/V3__x.sql.check:4`, as messages name it."""
        return f"{self.path}:{self.line}"


def is_check_file(relpath: str) -> bool:
    return relpath.lower().endswith(CHECK_SUFFIX)


def read_checks(text: str, path: str) -> list[Check]:
    """The checks of one file's text; a statement that is not a query, or a file without one, raises ScriptError."""
    lines = _LINE_BREAK.split(text)
    checks: list[Check] = []
    names: set[str] = set()
    after = 0  # lines before this index belong to earlier checks
    for number, statement in enumerate(split(text), start=1):
        if not _QUERY.match(statement.normalized):
            raise ScriptError(
                path,
                f"a check is a query that selects the offending rows (SELECT or WITH), not `{statement.first_line}`; "
                "move other statements into the migration",
                line=statement.line,
            )
        block = _comments_above(lines[after : statement.line - 1])
        title = next((c for c in block if c and not c.lower().startswith("dbops:")), "")
        name = _unique(_name(title) or f"check_{number}", names, statement.line)
        always = any(c.lower().startswith(ALWAYS_MARK) for c in block) or bool(_ALWAYS.search(statement.sql))
        checks.append(Check(path, statement.line, statement.sql, name, title or statement.first_line, always))
        after = statement.line - 1 + len(_LINE_BREAK.findall(statement.sql)) + 1
    if not checks:
        raise ScriptError(path, "holds no check; write a query that selects the rows that must not exist, or remove the file")
    return checks


def _comments_above(lines: list[str]) -> list[str]:
    """The texts of the `--` comment lines right above a check (a blank or other line ends the block)."""
    block: list[str] = []
    for line in reversed(lines):
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        block.append(stripped[2:].strip())
    return block[::-1]


def _name(title: str) -> str:
    """A Dagster check name from a check's title: lower case, `_` for anything outside [a-z0-9_]."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", title.lower())).strip("_")
    if len(name) > MAX_NAME:
        cut = name[:MAX_NAME]
        name = cut[: cut.rfind("_")] if "_" in cut else cut  # whole words only
    return name


def _unique(name: str, taken: set[str], line: int) -> str:
    if name in RESERVED_NAMES:
        name = f"{name}_check"
    if name in taken:
        name = f"{name}_line_{line}"
    taken.add(name)
    return name
