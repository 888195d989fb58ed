"""Static checks of migration scripts for Redshift: stable codes, one finding per problem, one-line fixes.

Each rule has a code (DB001…), a severity and a fix. A finding is silenced for one statement by
`-- dbops:lint-ignore DB004 <reason>` on one of the statement's lines or in the comment lines directly
above it; an ignore without a reason (or with an unknown code) is itself a finding and silences nothing.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbops.lint.cache import Learned, LintCache
from dbops.scripts.migrations import REPEATABLE, Callback, Catalog, Migration, PlaceholderContext, discover
from dbops.scripts.sources import ScriptFile
from dbops.scripts.statements import Statement

if TYPE_CHECKING:
    from dbops.lint.rules import ColumnTypes, Hit, Script

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Rule:
    """One check: a stable code, how bad it is, what it is about and the usual fix."""

    code: str
    severity: str
    title: str
    fix: str


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("DB001", ERROR, "SQL that does not parse as Redshift",
             "correct the SQL; if it is valid Redshift that sqlglot cannot parse, lint-ignore DB001 with a reason"),
        Rule("DB002", ERROR, "statement that cannot run in a transaction, in a transactional script",
             "move it to a script of its own (dbops then runs that script in autocommit)"),
        Rule("DB003", ERROR, "transaction control inside a script",
             "remove it: dbops runs each script in one transaction together with its history row"),
        Rule("DB004", ERROR, "destructive change",
             "keep the data (rename, or copy it first), or lint-ignore DB004 with the reason it is safe"),
        Rule("DB005", ERROR, "column type change Redshift cannot make in place",
             "add a column of the new type, UPDATE it from the old one, drop the old column and rename the new one"),
        Rule("DB006", ERROR, "privilege granted to PUBLIC",
             "grant to a group or role instead: GRANT ... TO GROUP reporting"),
        Rule("DB007", ERROR, "statement that fails when its repeatable script or callback runs again",
             "make it idempotent (IF NOT EXISTS / OR REPLACE) or move it to a versioned script"),
        Rule("DB008", WARNING, "DROP ... CASCADE",
             "drop the dependent objects explicitly, by name, before this statement"),
        Rule("DB009", WARNING, "character column without a length",
             "give a length, e.g. VARCHAR(256); VARCHAR(65535) is Redshift's maximum"),
        Rule("DB010", WARNING, "SELECT * in a view",
             "list the columns the view exposes"),
        Rule("DB011", WARNING, "PostgreSQL feature Redshift does not have",
             "use the Redshift equivalent named in the message"),
        Rule("DB012", INFO, "table without DISTSTYLE/DISTKEY or SORTKEY",
             "add e.g. DISTKEY(customer_id) SORTKEY(sale_date), or keep AUTO and lint-ignore DB012 with a reason"),
        Rule("DB013", WARNING, "lint-ignore comment without a rule code or a reason",
             "write -- dbops:lint-ignore DB004 <why this is fine>"),
    )
}


@dataclass(frozen=True)
class Finding:
    """One problem in one script, at one line."""

    code: str
    severity: str
    path: str
    line: int
    message: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "path": self.path, "line": self.line,
                "message": self.message, "fix": self.fix}

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.code} {self.severity}: {self.message} (fix: {self.fix})"


# --- ignores -------------------------------------------------------------------------------------

_IGNORE = re.compile(r"--\s*dbops:lint-ignore\b[ \t]*(?P<rest>[^\r\n]*)")
_CODES = re.compile(r"DB\d{3}(\s*,\s*DB\d{3})*", re.IGNORECASE)


@dataclass
class _Ignores:
    """The lint-ignore comments of one script: line → codes that line silences."""

    by_line: dict[int, set[str]] = field(default_factory=dict)
    comment_only: set[int] = field(default_factory=set)
    problems: list[Finding] = field(default_factory=list)

    @classmethod
    def read(cls, path: str, sql: str) -> _Ignores:
        ignores = cls()
        for number, line in enumerate(sql.split("\n"), start=1):
            if line.lstrip().startswith("--"):
                ignores.comment_only.add(number)
            m = _IGNORE.search(line)
            if not m:
                continue
            rest = m.group("rest").strip()
            codes = _CODES.match(rest)
            reason = rest[codes.end():].strip() if codes else ""
            names = {c.strip().upper() for c in codes.group(0).split(",")} if codes else set()
            unknown = sorted(names - RULES.keys())
            if not codes or unknown or not reason:
                problem = ("names no rule code" if not codes else f"names unknown code(s) {', '.join(unknown)}"
                           if unknown else f"gives no reason for ignoring {', '.join(sorted(names))}")
                ignores.problems.append(_finding("DB013", path, number, f"lint-ignore {problem}; it silences nothing"))
                continue
            ignores.by_line[number] = names
        return ignores

    def silences(self, code: str, statement: Statement) -> bool:
        last = statement.line + statement.sql.count("\n")
        lines = set(range(statement.line, last + 1))
        above = statement.line - 1
        while above in self.comment_only:
            lines.add(above)
            above -= 1
        return any(code in self.by_line.get(n, ()) for n in lines)


def _finding(code: str, path: str, line: int, message: str, fix: str = "") -> Finding:
    rule = RULES[code]
    return Finding(code, rule.severity, path, line, message, fix or rule.fix)


# --- scripts and catalogs ------------------------------------------------------------------------


def lint_script(script: Script, known: ColumnTypes | None = None) -> list[Finding]:
    """Every finding in one script, ignores applied."""
    from dbops.lint.rules import CHECKS, ColumnTypes, StatementContext, parse, script_hits  # sqlglot: loaded when a script is linted

    known = known or ColumnTypes()
    ignores = _Ignores.read(script.path, script.sql)
    findings: list[Finding] = list(ignores.problems)

    def report(statement: Statement, hit: Hit) -> None:
        if not ignores.silences(hit.code, statement):
            findings.append(_finding(hit.code, script.path, statement.line + hit.offset, hit.message, hit.fix))

    for statement, hit in script_hits(script):
        report(statement, hit)
    by_shape: dict[str, list[Hit]] = {}
    for statement in script.statements:
        shape = _insert_shape(statement.sql)
        hits = by_shape.get(shape) if shape is not None else None
        if hits is None:
            tree, failure = parse(statement)
            ctx = StatementContext(script, statement, tree, known)
            hits = [failure] if failure else []
            hits += [hit for check in CHECKS for hit in check(ctx)]
            known.learn(tree)
            if shape is not None:
                by_shape[shape] = hits
        for hit in hits:
            report(statement, hit)
    return findings


# An INSERT whose text has no comment, quoted name, dollar quote or backslash: its findings depend on its shape
# only, not on the values of its literals, so one parse serves every INSERT of the same shape in a script.
_INSERT = re.compile(r"insert\s+into\b", re.IGNORECASE)
_INSERT_UNSAFE = re.compile(r"""--|/\*|["$\\]""")
_LITERALS = re.compile(r"'(?:[^']|'')*'|(?<![\w.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w.])")
_LITERAL_CONTENT = re.compile(r"[^'\n]")


def _insert_shape(sql: str) -> str | None:
    """The INSERT with every literal's characters masked (lines and lengths kept), or None for other statements."""
    if not _INSERT.match(sql) or _INSERT_UNSAFE.search(sql):
        return None
    return _LITERALS.sub(lambda m: _LITERAL_CONTENT.sub("0", m.group(0)), sql)


def script_of(item: Migration | Callback) -> Script:
    """A migration or callback as lint sees it."""
    from dbops.lint.rules import CALLBACK, Script

    if isinstance(item, Callback):
        return Script(item.path, CALLBACK, item.sql, item.statements, rerunnable=True,
                      non_transactional=[s for s in item.statements if s.non_transactional])
    return Script(
        path=item.path,
        kind=item.kind,
        sql=item.sql,
        statements=item.statements,
        rerunnable=item.kind == REPEATABLE,
        execute_in_transaction=item.config.execute_in_transaction,
        mixed_allowed=item.config.mixed,
        non_transactional=item.non_transactional,
        mixed=item.is_mixed,
    )


def lint_order(catalog: Catalog) -> list[Migration | Callback]:
    """The catalog's scripts in the order lint reads them: baseline and versioned in order, repeatables, undo, callbacks."""
    return [*catalog.baseline, *catalog.versioned, *catalog.repeatable, *catalog.undo, *catalog.callbacks]


def scripts_of(catalog: Catalog) -> list[Script]:
    """The catalog's migrations (versioned first, in order) and callbacks, as lint sees them."""
    return [script_of(item) for item in lint_order(catalog)]


def lint_catalog(catalog: Catalog, cache: LintCache | None = None) -> list[Finding]:
    """Lint every script of a catalog, in the order they run; each script's findings by line. Needs no database.

    With a cache, a script whose key is known is not parsed again (see dbops.lint.cache for what the key covers);
    when every script is known, the rules (and sqlglot) are not even loaded.
    """
    known = _column_types([]) if cache is None else None
    learned_so_far: Learned = []  # the cached scripts' columns, until a script must be linted
    findings: list[Finding] = []
    state = ""
    with _quiet_sqlglot():
        for item in lint_order(catalog):
            if cache is None:
                findings.extend(_lint_one(item, known))
                continue
            is_callback = isinstance(item, Callback)
            settings = (None, False) if is_callback else (item.config.execute_in_transaction, item.config.mixed)
            key = cache.key(item.path, "callback" if is_callback else item.kind, item.sql, settings, state)
            hit = cache.get(key)
            if hit is None:
                known = known or _column_types(learned_so_far)
                found = _lint_one(item, known)
                learned = known.take_learned()
                cache.put(key, [f.as_dict() for f in found], learned)
            else:
                found = [Finding(**f) for f in hit[0]]
                learned = hit[1]
                if known is None:
                    learned_so_far += learned
                else:
                    known.add(learned)
            findings.extend(found)
            state = cache.chain(state, learned)
    if cache is not None:
        cache.save()
    return findings


def _column_types(learned: Learned) -> ColumnTypes:
    from dbops.lint.rules import ColumnTypes

    known = ColumnTypes()
    known.add(learned)
    return known


def _lint_one(item: Migration | Callback, known: ColumnTypes) -> list[Finding]:
    return sorted(lint_script(script_of(item), known), key=lambda f: (f.line, f.code))


class LintPlaceholders(PlaceholderContext):
    """Placeholder values for lint: a placeholder without a value stands in as its own name."""

    def lookup(self, name: str, filename: str) -> str | None:
        value = super().lookup(name, filename)
        return value if value else re.sub(r"\W", "_", name.strip().lower())


def lint_files(files: list[ScriptFile], placeholders: dict[str, str] | None = None,
               ignore_invalid_names: bool = False, cache: LintCache | None = None) -> tuple[Catalog, list[Finding]]:
    """Discover and lint the scripts of a snapshot; no placeholder needs a value."""
    catalog = discover(files, LintPlaceholders(values=placeholders or {}), ignore_invalid_names)
    return catalog, lint_catalog(catalog, cache)


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot warns about every statement it keeps as an opaque command; lint has its own findings."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Number of findings per severity."""
    result = {ERROR: 0, WARNING: 0, INFO: 0}
    for f in findings:
        result[f.severity] += 1
    return result
