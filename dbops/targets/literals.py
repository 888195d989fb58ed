"""dbops's SQL templates with their parameters written in as literals, for drivers that cannot bind them.

The Data API's BatchExecuteStatement takes no parameters (and its ExecuteStatement takes only named string
ones, no NULL): the bookkeeping rows travel as SQL text. The template rule is the Session's: `%s` stands for a
parameter and `%%` for `%`, outside quotes and comments only.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|%s|%%")


def literal(value: Any, backslashes: bool = False) -> str:
    """`value` as a SQL literal; `backslashes`: the server reads `\\` in strings as an escape (Redshift does,
    PostgreSQL with standard_conforming_strings does not)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} has no SQL literal")
        return repr(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat(sep=' ')}'::timestamp"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL character cannot be sent in SQL text")
        text = value.replace("\\", "\\\\") if backslashes else value
        return "'" + text.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for a {type(value).__name__}")


def bind(sql: str, params: Sequence[Any] | None, backslashes: bool = False) -> str:
    """The template `sql` with `params` written in; without params the SQL is returned as written."""
    if params is None:
        return sql
    values = iter(params)

    def replace(match: re.Match[str]) -> str:
        token = match[0]
        if token == "%s":
            try:
                return literal(next(values), backslashes)
            except StopIteration:
                raise ValueError(f"more %s than parameters in: {sql[:200]}") from None
        return "%" if token == "%%" else token

    bound = _TOKEN.sub(replace, sql)
    if next(values, _END) is not _END:
        raise ValueError(f"more parameters than %s in: {sql[:200]}")
    return bound


_END = object()
