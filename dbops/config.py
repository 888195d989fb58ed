"""Settings from flags and the environment (DBOPS_*)."""
from __future__ import annotations

import os

from dbops.errors import ConfigError


def env_placeholders(environ: dict[str, str] | None = None) -> dict[str, str]:
    """`DBOPS_PLACEHOLDER_<NAME>=value` → {name: value} (names are case-insensitive)."""
    environ = dict(os.environ) if environ is None else environ
    prefix = "DBOPS_PLACEHOLDER_"
    return {k[len(prefix):].lower(): v for k, v in environ.items() if k.startswith(prefix) and len(k) > len(prefix)}


def parse_placeholders(pairs: list[str]) -> dict[str, str]:
    """`name=value` flags → {name: value}; a pair without `=` is bad input."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--placeholder {pair!r}: write it as NAME=VALUE")
        values[name.strip().lower()] = value
    return values


def locations_from(value: str | None) -> list[str]:
    """Comma-separated folders (`DBOPS_LOCATIONS`, default `sql`); a `filesystem:` prefix is accepted."""
    raw = value or os.environ.get("DBOPS_LOCATIONS") or "sql"
    return [part.strip().removeprefix("filesystem:") for part in raw.split(",") if part.strip()]
