"""Lint findings kept across runs: a script's findings are looked up by a digest of everything they depend on.

The key of a script covers the lint rules themselves (the source of dbops/lint and of the statement splitter, and
sqlglot's version), the dialect, the script's path, kind, SQL (placeholders replaced; lint-ignore comments are
part of it) and .sql.conf settings, and the column types the scripts before it defined (DB005 judges a type
change by them). The cache is one JSON file under DBOPS_HOME; `DBOPS_LINT_CACHE=off` turns it off. It is a
speed-up only: a file that cannot be read or written is ignored.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from dbops.paths import dbops_home

FORMAT = 1
MAX_ENTRIES = 20_000  # a few branches' worth of scripts; the least recently used go first
DIALECT = "redshift"
_SOURCES = (Path(__file__).parent, Path(__file__).parent.parent / "scripts" / "statements.py")

Learned = list[tuple[str, str, str]]


@cache
def rules_digest() -> str:
    """A digest of the code that decides findings: a change to any rule, to the splitter or to sqlglot changes it."""
    digest = hashlib.sha256(f"{FORMAT}\0{version('sqlglot')}\0{DIALECT}".encode())  # not imported: it takes a while
    for source in _SOURCES:
        for path in sorted(source.glob("*.py")) if source.is_dir() else [source]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class LintCache:
    """Findings (as dicts) and learned column types per script key, read from and saved to one file."""

    path: Path
    entries: dict[str, list[Any]] = field(default_factory=dict)
    used: dict[str, None] = field(default_factory=dict)
    dirty: bool = False
    hits: int = 0
    misses: int = 0

    @classmethod
    def default(cls) -> LintCache | None:
        """The cache under DBOPS_HOME, or None when DBOPS_LINT_CACHE is off/0/false."""
        if os.environ.get("DBOPS_LINT_CACHE", "").strip().lower() in ("0", "off", "false", "no"):
            return None
        return cls.load(dbops_home() / "lint-cache.json")

    @classmethod
    def load(cls, path: Path) -> LintCache:
        """The cache in `path`; an absent, unreadable or outdated file is an empty cache."""
        entries: dict[str, list[Any]] = {}
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("rules") == rules_digest():
                entries = dict(document["entries"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return cls(path, entries)

    @staticmethod
    def key(path: str, kind: str, sql: str, settings: tuple[Any, ...], before: str) -> str:
        """The key of one script: the rules, its path, kind, SQL and settings, and the column types before it."""
        parts = (rules_digest(), path, kind, repr(settings), before)
        digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass"))
        digest.update(b"\0" + sql.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    @staticmethod
    def chain(before: str, learned: Learned) -> str:
        """The column-type state after a script: the state before it and the columns it defined."""
        if not learned:
            return before
        return hashlib.sha256((before + "\0" + json.dumps(learned)).encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> tuple[list[dict[str, Any]], Learned] | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.used[key] = None
        findings, learned = entry
        return findings, [tuple(item) for item in learned]  # type: ignore[misc]

    def put(self, key: str, findings: list[dict[str, Any]], learned: Learned) -> None:
        self.entries[key] = [findings, [list(item) for item in learned]]
        self.used[key] = None
        self.dirty = True

    def save(self) -> None:
        """Write the cache (atomically) when it changed: this run's entries first, then older ones up to the limit."""
        if not self.dirty:
            return
        keep = {k: self.entries[k] for k in self.used}
        for key, entry in self.entries.items():  # the previous run's entries come first
            if len(keep) >= MAX_ENTRIES:
                break
            keep.setdefault(key, entry)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.path.parent, prefix=".lint-cache-",
                                             delete=False) as out:
                json.dump({"rules": rules_digest(), "entries": keep}, out, separators=(",", ":"))
            os.replace(out.name, self.path)
        except OSError:
            try:
                os.unlink(out.name)
            except (OSError, UnboundLocalError):
                pass
        self.dirty = False
