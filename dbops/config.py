"""Settings from flags and the environment (DBOPS_*)."""
from __future__ import annotations

import os
import re

from dbops.errors import ConfigError


def env_placeholders(environ: dict[str, str] | None = None) -> dict[str, str]:
    """`DBOPS_PLACEHOLDER_<NAME>=value` → {name: value} (names are case-insensitive)."""
    environ = dict(os.environ) if environ is None else environ
    prefix = "DBOPS_PLACEHOLDER_"
    return {k[len(prefix):].lower(): v for k, v in environ.items() if k.startswith(prefix) and len(k) > len(prefix)}


def placeholder_variable(name: str) -> str:
    """The environment variable that sets placeholder `name`: upper case where that reads back as the same
    name (`DBOPS_PLACEHOLDER_DAYS`), the name as it is otherwise (`straße` would come back as `strasse`)."""
    upper = name.upper()
    return f"DBOPS_PLACEHOLDER_{upper if upper.lower() == name.lower() else name}"


def parse_placeholders(pairs: list[str]) -> dict[str, str]:
    """`name=value` flags → {name: value}; a pair without `=` is bad input."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--placeholder {pair!r}: write it as NAME=VALUE")
        values[name.strip().lower()] = value
    return values


def locations_from(value: str | None, conf: dict[str, str] | None = None) -> list[str]:
    """Comma-separated folders (flag, `DBOPS_LOCATIONS`, flyway.locations, default `sql`); `filesystem:` accepted."""
    raw = value or os.environ.get("DBOPS_LOCATIONS") or (conf or {}).get("locations") or "sql"
    return [part.strip().removeprefix("filesystem:") for part in raw.split(",") if part.strip()]


FLYWAY_CONF = "flyway.conf"


def read_flyway_conf(path: str | None = None) -> dict[str, str]:
    """Settings from a Flyway config file (`DBOPS_CONFIG`, default ./flyway.conf; absent: {}).

    Understood keys: flyway.placeholders.<name>, flyway.locations, flyway.table, flyway.defaultSchema,
    flyway.schemas, flyway.outOfOrder, flyway.mixed. Keys come back without `flyway.`.
    """
    from pathlib import Path

    conf = Path(path or os.environ.get("DBOPS_CONFIG") or FLYWAY_CONF)
    try:
        if not conf.is_file():
            if path or os.environ.get("DBOPS_CONFIG"):
                raise ConfigError(f"{conf}: config file not found")
            return {}
        text = conf.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{conf}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{conf}: byte {exc.start} is not valid UTF-8; save the config file as UTF-8") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{conf}:{number}: expected key=value, got {line!r}")
        key = key.strip()
        if key.startswith("flyway."):
            values[key[len("flyway."):]] = value.strip()
    return values


def conf_placeholders(conf: dict[str, str]) -> dict[str, str]:
    """`placeholders.<name>=value` entries of a Flyway config → {name: value}."""
    prefix = "placeholders."
    return {k[len(prefix):].lower(): v for k, v in conf.items() if k.startswith(prefix)}


def conf_schemas(conf: dict[str, str]) -> list[str]:
    """`flyway.schemas` of a Flyway config: the schemas dbops creates when missing, in order."""
    return [s.strip() for s in conf.get("schemas", "").split(",") if s.strip()]


def conf_schema(conf: dict[str, str]) -> str | None:
    """The default schema from a Flyway config: defaultSchema, else the first of schemas."""
    if conf.get("defaultSchema"):
        return conf["defaultSchema"]
    schemas = conf_schemas(conf)
    return schemas[0] if schemas else None
