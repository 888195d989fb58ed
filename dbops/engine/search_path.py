"""The connection's default schema: put first on the session's search path, as Flyway does."""
from __future__ import annotations

import re

from dbops.engine.history import quote_ident
from dbops.targets.base import Session

# What can move a session off its default schema: SET/RESET search_path, set_config('search_path', …), RESET ALL,
# DISCARD ALL (the last two reset every setting).
_CHANGES_PATH = re.compile(r"search_path|\breset\s+all\b|\bdiscard\s+all\b", re.IGNORECASE)


def split_search_path(value: str) -> list[str]:
    """The schema names of a search_path setting (`"$user", public` → `$user`, `public`), unquoted.

    Unquoted names are folded to lower case, as the server folds them when it resolves the path.
    """
    names: list[str] = []
    position = 0
    while position < len(value):
        char = value[position]
        if char in " \t\n,":
            position += 1
        elif char == '"':
            end = position + 1
            name = []
            while end < len(value):
                if value[end] == '"' and value[end + 1 : end + 2] == '"':
                    name.append('"')
                    end += 2
                elif value[end] == '"':
                    break
                else:
                    name.append(value[end])
                    end += 1
            names.append("".join(name))
            position = end + 1
        else:
            end = value.find(",", position)
            end = len(value) if end < 0 else end
            names.append(value[position:end].strip().lower())
            position = end
    return names


def search_path_statement(session: Session, schema: str) -> str:
    """`SET search_path TO "schema", <the session's own path>`: `schema` becomes where unqualified names go.

    The session's path stays behind it, so objects it reached before (in `public`, say) still resolve, as
    Flyway keeps the original path. Where `schema` is already the session's current schema the path is kept
    as it is. Every name is quoted; the statement takes no parameters.
    """
    current, path = session.query("select current_schema(), current_setting('search_path')")[0]
    names = split_search_path(str(path or ""))
    if current != schema:
        names = [schema, *(name for name in names if name != schema)]
    return "SET search_path TO " + ", ".join(quote_ident(name) for name in names)


def changes_search_path(sql: str) -> bool:
    """Whether a script may change the session's search path (it then changes it for itself only)."""
    for start in range(0, len(sql), _CHUNK):  # a slice at a time, lower-cased: never a copy of a whole big script
        chunk = sql[max(start - _OVERLAP, 0) : start + _CHUNK].lower()
        if "search_path" in chunk or (("reset" in chunk or "discard" in chunk) and _CHANGES_PATH.search(chunk)):
            return True
    return False


_CHUNK, _OVERLAP = 1 << 20, 64
