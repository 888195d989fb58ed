"""Script facts (statement count, tables touched) cached on disk by the script's text, so loading
definitions tokenizes only new or changed scripts (`<DBOPS_HOME>/cache/script-facts.json`)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from dbops.orchestration.lineage import ScriptFacts, TableRef, Touch

FORMAT = 1
_KEY_CHUNK = 1 << 20


class FactsCache:
    """A JSON file of facts keyed by a hash of (format, dialect, default schema, SQL); unusable files are ignored."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list] = {}
        self._dirty = False
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self._entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._entries = {}

    @staticmethod
    def key(sql: str, dialect: str, default_schema: str) -> str:
        digest = hashlib.sha1(f"{FORMAT}\0{dialect}\0{default_schema}\0".encode("utf-8", "surrogatepass"))
        for start in range(0, len(sql), _KEY_CHUNK):  # a big script is hashed a slice at a time, never copied whole
            digest.update(sql[start : start + _KEY_CHUNK].encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, key: str) -> ScriptFacts | None:
        entry = self._entries.get(key)
        if not isinstance(entry, list) or len(entry) != 2:
            return None
        statements, touches = entry
        return ScriptFacts(statements, [Touch(TableRef(s, n), action, kind) for s, n, action, kind in touches])

    def put(self, key: str, facts: ScriptFacts) -> None:
        self._entries[key] = [facts.statements, [[t.table.schema, t.table.name, t.action, t.kind] for t in facts.touches]]
        self._dirty = True

    def save(self) -> None:
        """Write the file if anything was added (atomically; a read-only folder just means no cache)."""
        if not self._dirty or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".facts-", suffix=".json")
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(self._entries, out, separators=(",", ":"))
            os.replace(temporary, self.path)
            self._dirty = False
        except OSError:
            Path(temporary).unlink(missing_ok=True)
