"""Settings: from flags, then DBOPS_* variables, then flyway.conf, then the defaults."""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbops.errors import ConfigError

DEFAULT_TABLE = "flyway_schema_history"
DEFAULT_SCHEMA = "public"
PLACEHOLDER_PREFIX = "DBOPS_PLACEHOLDER_"
TRUE = ("1", "true", "yes")
# statement_timeout is an int of milliseconds on PostgreSQL and Redshift: the longest timeout dbops can set.
MAX_TIMEOUT_SECONDS = 2_147_483.647


@dataclass
class Settings:
    """Everything that shapes a run besides the target and the scripts."""

    locations: list[str] = field(default_factory=lambda: ["sql"])
    schema: str = DEFAULT_SCHEMA  # the default schema: the history table's, and where unqualified names in scripts go
    schemas: list[str] = field(default_factory=list)  # flyway.schemas: created when missing
    table: str = DEFAULT_TABLE
    placeholders: dict[str, str] = field(default_factory=dict)
    ignore_invalid_names: bool = False
    out_of_order: bool = False
    mixed: bool = False
    target_version: str | None = None
    lock_timeout: float = 600.0
    statement_timeout: float | None = None

    @property
    def managed_schemas(self) -> list[str]:
        """Every schema dbops creates when missing, in Flyway's order: `schemas`, the default schema first when
        not among them."""
        listed = list(dict.fromkeys(self.schemas))
        return listed if self.schema in listed else [self.schema, *listed]


def settings_from(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    conf: dict[str, str] | None = None,
) -> Settings:
    """Settings from flags (the command line's names: locations, schema, table, placeholder, target, …), then
    DBOPS_* variables (`environ`, default os.environ), then flyway.conf (`conf`, default read_flyway_conf()),
    then the defaults. The one place these sources are mapped."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    conf = read_flyway_conf() if conf is None else conf
    placeholders = conf_placeholders(conf)
    placeholders.update(env_placeholders(environ))
    placeholders.update(parse_placeholders(flags.get("placeholder", [])))
    return Settings(
        locations=locations_from(flags.get("locations"), conf, environ),
        schema=flags.get("schema") or environ.get("DBOPS_SCHEMA") or conf_schema(conf) or DEFAULT_SCHEMA,
        schemas=conf_schemas(conf),
        table=flags.get("table") or environ.get("DBOPS_TABLE") or conf.get("table") or DEFAULT_TABLE,
        placeholders=placeholders,
        ignore_invalid_names=bool(flags.get("ignore_invalid_names")) or environ.get("DBOPS_IGNORE_INVALID_NAMES", "").lower() in TRUE,
        out_of_order=bool(flags.get("out_of_order")) or conf_flag(conf, "outOfOrder"),
        mixed=bool(flags.get("mixed")) or conf_flag(conf, "mixed"),
        target_version=flags.get("target"),
        lock_timeout=flags.get("lock_timeout", 600.0),
        statement_timeout=flags.get("statement_timeout"),
    )


def timeout_problem(seconds: float, statement: bool = False) -> str | None:
    """Why `seconds` cannot be a lock timeout (or, `statement`, a statement timeout; 0 turns it off), None when it can:
    a finite number from 0 up to MAX_TIMEOUT_SECONDS (about 24.8 days), a statement timeout at least 1 ms."""
    if math.isnan(seconds) or seconds < 0:
        return "must be a number of seconds, 0 or more"
    if seconds > MAX_TIMEOUT_SECONDS:
        return f"is more than {MAX_TIMEOUT_SECONDS:.3f} seconds, the longest timeout PostgreSQL and Redshift take (about 24.8 days)"
    if statement and 0 < seconds < 0.001:
        return "is under 1 ms, the shortest statement timeout (0 turns it off)"
    return None


def check_timeouts(settings: Settings, lock: str = "lock_timeout", statement: str = "statement_timeout") -> Settings:
    """`settings` when its timeouts are usable; otherwise ConfigError naming the setting (`lock`, `statement`)."""
    for name, value, is_statement in ((lock, settings.lock_timeout, False), (statement, settings.statement_timeout, True)):
        problem = None if value is None else timeout_problem(float(value), is_statement)
        if problem:
            raise ConfigError(f"{name} {value!r} {problem}")
    return settings


def url_from(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The database URL: `--url`, else DBOPS_URL; None means the embedded database."""
    environ = os.environ if environ is None else environ
    return (flags or {}).get("url") or environ.get("DBOPS_URL") or None


def settings_variables(settings: Settings) -> dict[str, str]:
    """The DBOPS_* variables that make `settings_from` (with no flags) read `settings` back — for a process
    (the Dagster definitions, `dagster dev`) that takes its settings from the environment."""
    values = {
        "DBOPS_LOCATIONS": ",".join(settings.locations),
        "DBOPS_SCHEMA": settings.schema,
        "DBOPS_TABLE": settings.table,
        "DBOPS_IGNORE_INVALID_NAMES": "true" if settings.ignore_invalid_names else "",
    }
    values.update({placeholder_variable(name): value for name, value in settings.placeholders.items()})
    return values


def env_placeholders(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`DBOPS_PLACEHOLDER_<NAME>=value` → {name: value} (names are case-insensitive)."""
    environ = os.environ if environ is None else environ
    prefix = PLACEHOLDER_PREFIX
    return {k[len(prefix):].lower(): v for k, v in environ.items() if k.startswith(prefix) and len(k) > len(prefix)}


def placeholder_variable(name: str) -> str:
    """The environment variable that sets placeholder `name`: upper case where that reads back as the same
    name (`DBOPS_PLACEHOLDER_DAYS`), the name as it is otherwise (`straße` would come back as `strasse`)."""
    upper = name.upper()
    return f"{PLACEHOLDER_PREFIX}{upper if upper.lower() == name.lower() else name}"


def parse_placeholders(pairs: list[str]) -> dict[str, str]:
    """`name=value` flags → {name: value}; a pair without `=` is bad input."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--placeholder {pair!r}: write it as NAME=VALUE")
        values[name.strip().lower()] = value
    return values


def locations_from(value: str | None, conf: dict[str, str] | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Comma-separated folders (flag, `DBOPS_LOCATIONS`, flyway.locations, default `sql`); `filesystem:` accepted."""
    environ = os.environ if environ is None else environ
    raw = value or environ.get("DBOPS_LOCATIONS") or (conf or {}).get("locations") or "sql"
    return [part.strip().removeprefix("filesystem:") for part in raw.split(",") if part.strip()]


FLYWAY_CONF = "flyway.conf"


BOOLEAN_KEYS = ("outOfOrder", "mixed")  # the flyway.* keys dbops reads as true/false


def read_flyway_conf(path: str | None = None) -> dict[str, str]:
    """Settings from a Flyway config file (`DBOPS_CONFIG`, default ./flyway.conf; absent: {}).

    Understood keys: flyway.placeholders.<name>, flyway.locations, flyway.table, flyway.defaultSchema,
    flyway.schemas, flyway.outOfOrder, flyway.mixed. Keys come back without `flyway.`. The file is read with
    java.util.Properties' line rules (see `properties`); a bad line or a boolean that is not true/false is a
    ConfigError naming the file and line.
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
    for number, key, value in properties(text, str(conf)):
        if key.startswith("flyway."):
            name = key[len("flyway."):]
            problem = conf_problem(name, value)
            if problem:
                raise ConfigError(f"{conf}:{number}: {key}: {problem}")
            values[name] = value
    return values


def properties(text: str, where: str) -> list[tuple[int, str, str]]:
    """(line, key, value) of a Java properties text, in order: a BOM at the start is ignored; `#` and `!` start
    comment lines; a line ending in an odd number of backslashes continues on the next one (whose leading white
    space is dropped); the key ends at the first `=`, `:` or white space, and one `=` or `:` with white space
    around it separates it from the value. Backslashes are otherwise kept as written, as Flyway reads
    flyway.conf (it doubles them before java.util.Properties sees them, so `C:\\sql` stays a path). A line with
    a key alone is bad input (ConfigError naming `where` and the line)."""
    entries: list[tuple[int, str, str]] = []
    for number, line in _logical_lines(text.removeprefix("\ufeff")):
        match = re.match(r"([^=:\s]+)\s*(?:[=:]\s*|(?=\S)|$)(.*)", line, re.S)
        key, value = (match[1], match[2]) if match else ("", line)
        if not match or (not value and not re.search(r"[=:]", line)):
            raise ConfigError(f"{where}:{number}: expected key=value (or key: value), got {line!r}")
        entries.append((number, key, value.strip()))
    return entries


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """The non-blank, non-comment lines of a properties text with continuations joined, each with its first line."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        line = raw.strip(" \t\f")  # Flyway trims each line before java.util.Properties reads it
        if pending is None and (not line or line.startswith(("#", "!"))):
            continue
        start, head = pending or (number, "")
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:
            pending = (start, head + line[:-1])
            continue
        pending = None
        lines.append((start, head + line))
    if pending is not None:
        lines.append(pending)
    return lines


def conf_problem(key: str, value: str) -> str | None:
    """Why `value` cannot be Flyway setting `key` (without `flyway.`), None when it can: booleans are true or false."""
    if key in BOOLEAN_KEYS and value.lower() not in ("true", "false"):
        return f"{value!r} is not true or false; write true or false"
    return None


def conf_flag(conf: dict[str, str], key: str) -> bool:
    """A boolean Flyway setting (absent: false); a value other than true/false is a ConfigError naming the key."""
    value = conf.get(key, "false")
    problem = conf_problem(key, value)
    if problem:
        raise ConfigError(f"flyway.{key}: {problem}")
    return value.lower() == "true"


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
