"""Discover migration scripts: Flyway names, versions, checksums, placeholders, per-script config."""
from __future__ import annotations

import codecs
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property, total_ordering
from pathlib import PurePosixPath

from dbops.config import placeholder_variable
from dbops.errors import ConfigError, ScriptError
from dbops.scripts.checks import CHECK_SUFFIX, Check, read_checks
from dbops.scripts.sources import ScriptFile
from dbops.scripts.statements import Statement, may_hold_non_transactional, split

VERSIONED, REPEATABLE, UNDO, BASELINE = "V", "R", "U", "B"


class RowType(StrEnum):
    """The `type` of a Flyway history row (a str: rows read back compare equal, and unknown types stay str)."""

    SQL = "SQL"
    UNDO_SQL = "UNDO_SQL"
    SQL_BASELINE = "SQL_BASELINE"  # a B script applied
    BASELINE = "BASELINE"  # `baseline` marked the database
    SCHEMA = "SCHEMA"  # the schemas Flyway (or dbops) created
    DELETE = "DELETE"  # `repair` marked a missing script deleted


HISTORY_TYPES = {VERSIONED: RowType.SQL, REPEATABLE: RowType.SQL, UNDO: RowType.UNDO_SQL, BASELINE: RowType.SQL_BASELINE}

CALLBACK_EVENTS = frozenset(
    {
        "beforeMigrate", "beforeEachMigrate", "beforeEachMigrateStatement", "afterEachMigrateStatement",
        "afterEachMigrateStatementError", "afterEachMigrate", "afterEachMigrateError", "afterMigrate",
        "afterMigrateApplied", "afterVersioned", "afterMigrateError", "beforeUndo", "beforeEachUndo",
        "afterEachUndo", "afterEachUndoError", "afterUndo", "afterUndoError", "beforeClean", "afterClean",
        "afterCleanError", "beforeInfo", "afterInfo", "afterInfoError", "beforeValidate", "afterValidate",
        "afterValidateError", "beforeBaseline", "afterBaseline", "afterBaselineError", "beforeRepair",
        "afterRepair", "afterRepairError", "createSchema", "beforeConnect", "afterConnect",
    }
)
CONF_KEYS = {"executeintransaction", "encoding", "placeholderreplacement", "mixed"}
_VERSION_PART = re.compile(r"[0-9]+")
_PLACEHOLDER = re.compile(r"\$\{([^}\r\n]+)\}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
VERSION_LIMIT = 50  # Flyway's history table keeps a version in VARCHAR(50)
DESCRIPTION_LIMIT = 200  # and a description in VARCHAR(200), abbreviated to fit (Flyway's AbbreviationUtils)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A Flyway version: parts compared as integers, trailing zeros ignored; text as stored."""

    text: str
    parts: tuple[int, ...]

    @classmethod
    def parse(cls, raw: str) -> Version:
        """Parse `1.2`, `1_2`, `001`; raise ValueError when a part is not a number."""
        pieces = re.split(r"[._]", raw)
        if not raw or not all(_VERSION_PART.fullmatch(p) for p in pieces):
            raise ValueError(raw)
        parts = [int(p) for p in pieces]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return cls(text=raw.replace("_", "."), parts=tuple(parts))

    def __lt__(self, other: Version) -> bool:
        return self.parts < other.parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __str__(self) -> str:
        return self.text


def version_flag(raw: str, flag: str) -> Version:
    """A version given on the command line (`--target 3`, `--version V1.2`); anything else is bad input (exit 2)."""
    try:
        return Version.parse(raw.strip().lstrip("Vv"))
    except ValueError:
        raise ConfigError(f"{flag} {raw!r}: not a version; use digits separated by . or _ (e.g. 3 or 1.2)") from None


@dataclass(frozen=True)
class ScriptConfig:
    """Per-script settings from `<script>.sql.conf` (Flyway's keys, plus dbops's `mixed`)."""

    execute_in_transaction: bool | None = None
    encoding: str = "utf-8"
    placeholder_replacement: bool = True
    mixed: bool = False


@dataclass
class Migration:
    """One script: what it is, where it came from, its checksum and its SQL (placeholders replaced)."""

    kind: str
    version: Version | None
    description: str
    script: str
    path: str
    text: str
    sql: str
    checksum: int
    config: ScriptConfig = field(default_factory=ScriptConfig)
    checks: list[Check] = field(default_factory=list)  # from `<script>.sql.check`; not part of the checksum

    @property
    def history_type(self) -> str:
        return HISTORY_TYPES[self.kind]

    @property
    def label(self) -> str:
        """`V3 (add orders)` or `R (reporting views)`, for messages."""
        return f"{self.kind}{self.version or ''} ({self.description})" if self.description else f"{self.kind}{self.version}"

    @cached_property
    def statements(self) -> list[Statement]:
        return split(self.sql)

    def _may_hold(self, dialect: str | None) -> bool:
        """may_hold_non_transactional, once per dialect (it reads the whole text)."""
        known = self.__dict__.setdefault("_may_hold_by_dialect", {})
        if dialect not in known:
            known[dialect] = may_hold_non_transactional(self.sql, dialect)
        return known[dialect]

    @cached_property
    def non_transactional(self) -> list[Statement]:
        """Statements Redshift or PostgreSQL refuse in a transaction (what `plan` and `lint` show)."""
        if not self._may_hold(None):
            return []
        return [s for s in self.statements if s.non_transactional]

    def non_transactional_on(self, dialect: str | None) -> list[Statement]:
        """Statements that `dialect` refuses in a transaction (None: either dialect)."""
        if not self._may_hold(dialect):
            return []
        if dialect is None:
            return self.non_transactional
        return [s for s in self.statements if s.non_transactional_on(dialect)]

    def in_transaction_on(self, dialect: str | None) -> bool:
        """Whether the script runs in one transaction (the default) or in autocommit on `dialect`."""
        if self.config.execute_in_transaction is not None:
            return self.config.execute_in_transaction
        return not self.non_transactional_on(dialect)

    def is_mixed_on(self, dialect: str | None) -> bool:
        """Non-transactional statements together with transactional ones (ANALYZE, SET, SELECT do not count)."""
        odd = self.non_transactional_on(dialect)
        return bool(odd) and any(s not in odd and not s.neutral for s in self.statements)

    @property
    def in_transaction(self) -> bool:
        return self.in_transaction_on(None)

    @property
    def is_mixed(self) -> bool:
        return self.is_mixed_on(None)


@dataclass
class Callback:
    """A Flyway SQL callback such as `afterMigrate__grants.sql`."""

    event: str
    description: str
    script: str
    path: str
    sql: str

    @cached_property
    def statements(self) -> list[Statement]:
        return split(self.sql)


@dataclass
class Catalog:
    """Every script of a snapshot, in Flyway's order, plus the warnings discovery produced."""

    versioned: list[Migration]
    repeatable: list[Migration]
    undo: list[Migration]
    baseline: list[Migration]
    callbacks: list[Callback]
    warnings: list[str] = field(default_factory=list)

    @property
    def migrations(self) -> list[Migration]:
        """Versioned then repeatable scripts: the order migrate applies them in."""
        return self.versioned + self.repeatable

    def callbacks_for(self, event: str) -> list[Callback]:
        return [c for c in self.callbacks if c.event == event]


@dataclass(frozen=True)
class PlaceholderContext:
    """Values for `${name}` placeholders, user-defined (case-insensitive) and Flyway's built-ins."""

    values: dict[str, str] = field(default_factory=dict)
    schema: str = "public"
    user: str = ""
    database: str = ""
    table: str = "flyway_schema_history"
    timestamp: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    values_needed: bool = True  # False for listing and comparing (info, validate): a `${name}` without a value stays

    def lookup(self, name: str, filename: str) -> str | None:
        builtins = {
            "flyway:defaultschema": self.schema,
            "flyway:user": self.user,
            "flyway:database": self.database,
            "flyway:timestamp": self.timestamp,
            "flyway:filename": filename,
            "flyway:table": self.table,
        }
        key = name.strip().lower()
        if key in builtins:
            return builtins[key]
        return {k.lower(): v for k, v in self.values.items()}.get(key)


def checksum(text: str) -> int:
    """Flyway's checksum of a file's text: its first BOM dropped (Flyway's BomFilter), then `lines_checksum`."""
    return lines_checksum(text, start=1 if text.startswith("\ufeff") else 0)


def lines_checksum(text: str, start: int = 0) -> int:
    """CRC32 over each line's UTF-8 bytes from `start`, terminators excluded, as a signed int; a U+FEFF stays in."""
    crc = 0
    for chunk in range(start, len(text), _CHECKSUM_CHUNK):  # a big script is never copied whole
        piece = text[chunk : chunk + _CHECKSUM_CHUNK]
        crc = zlib.crc32(piece.replace("\r", "").replace("\n", "").encode("utf-8", "surrogatepass"), crc)
    return crc - (1 << 32) if crc >= (1 << 31) else crc


_CHECKSUM_CHUNK = 1 << 20


def abbreviate_description(description: str) -> str:
    """The description as Flyway records it: over 200 characters, its first 197 and `...`."""
    return description if len(description) <= DESCRIPTION_LIMIT else description[: DESCRIPTION_LIMIT - 3] + "..."


def line_of(text: str, offset: int) -> int:
    """1-based line number of `offset`, counting \\r\\n, \\r and \\n as line breaks."""
    return len(_LINE_BREAK.findall(text, 0, offset)) + 1


def replace_placeholders(text: str, context: PlaceholderContext, path: str) -> str:
    """Replace every `${name}`; an undefined one raises ScriptError naming file and line."""
    filename = PurePosixPath(path).name

    def substitute(match: re.Match[str]) -> str:
        value = context.lookup(match.group(1), filename)
        if value is None and not context.values_needed:
            return match.group(0)
        if value is None:
            raise ScriptError(
                path,
                f"no value for placeholder ${{{match.group(1)}}}; "
                f"pass --placeholder {match.group(1)}=VALUE or set {placeholder_variable(match.group(1))}",
                line=line_of(text, match.start()),
            )
        return value

    return _PLACEHOLDER.sub(substitute, text)


@dataclass(frozen=True)
class ParsedName:
    kind: str
    version: Version | None
    description: str


def parse_name(filename: str) -> ParsedName | str | None:
    """A script's kind, version and description; a callback event name (str); None if invalid."""
    stem = filename[: -len(".sql")]
    head, sep, desc = stem.partition("__")
    event = head if head in CALLBACK_EVENTS else None
    if event:
        return event
    if not head or head[0] not in "VRUB":
        return None
    kind, raw_version = head[0], head[1:]
    description = desc.replace("_", " ")
    if kind == REPEATABLE:
        return ParsedName(kind, None, description) if raw_version == "" and sep else None
    try:
        version = Version.parse(raw_version)
    except ValueError:
        return None
    return ParsedName(kind, version, description)


def parse_conf(file: ScriptFile) -> ScriptConfig:
    """Read a `.sql.conf` file: `key=value` lines, `#` comments, Flyway's keys."""
    values: dict[str, str] = {}
    text = _decode(file, "utf-8")
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if not sep or key not in CONF_KEYS:
            raise ScriptError(
                file.display_path,
                f"unknown setting {line!r}; allowed: executeInTransaction, encoding, placeholderReplacement, mixed",
                line=number,
            )
        values[key] = value.strip()
    encoding = values.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ScriptError(file.display_path, f"unknown encoding {encoding!r}") from None
    return ScriptConfig(
        execute_in_transaction=_bool(values, "executeintransaction", file, None),
        encoding=encoding,
        placeholder_replacement=bool(_bool(values, "placeholderreplacement", file, True)),
        mixed=bool(_bool(values, "mixed", file, False)),
    )


def _bool(values: dict[str, str], key: str, file: ScriptFile, default: bool | None) -> bool | None:
    if key not in values:
        return default
    value = values[key].lower()
    if value not in ("true", "false"):
        raise ScriptError(file.display_path, f"{key} must be true or false, not {values[key]!r}")
    return value == "true"


def _decode(file: ScriptFile, encoding: str) -> str:
    """The file's text; bytes that do not decode, or a NUL character (no server takes one in SQL), raise ScriptError."""
    try:
        text = file.text(encoding)
    except UnicodeDecodeError as exc:
        path = file.display_path
        line = file.data[: exc.start].count(b"\n") + 1
        raise ScriptError(
            path,
            f"bytes at offset {exc.start} are not valid {encoding}; save the file as UTF-8 "
            f"or set encoding= in its .sql.conf",
            line=line,
        ) from None
    if "\x00" in text:
        raise ScriptError(
            file.display_path,
            "holds a NUL byte, which PostgreSQL and Redshift refuse in SQL text; remove the NUL byte (a UTF-16 file: "
            "save it as UTF-8, or set encoding=UTF-16 in its .sql.conf)",
            line=line_of(text, text.index("\x00")),
        )
    return text


def _refuse_long_version(parsed: ParsedName, path: str) -> None:
    """A version the history table cannot keep: refused before anything runs, not when its row is written."""
    if parsed.version is not None and len(parsed.version.text) > VERSION_LIMIT:
        raise ScriptError(
            path,
            f"version {parsed.version.text} has {len(parsed.version.text)} characters, more than the {VERSION_LIMIT} "
            f"that Flyway's history table keeps (version VARCHAR({VERSION_LIMIT})); give the script a shorter version",
        )


def discover(
    files: list[ScriptFile],
    placeholders: PlaceholderContext | None = None,
    ignore_invalid_names: bool = False,
) -> Catalog:
    """Turn the files of a snapshot into a Catalog; every problem with names or content raises."""
    context = placeholders or PlaceholderContext()
    # `V1__x.sql.conf` configures `V1__x.sql`: the suffix in any case, the name exactly (R__a and R__A are two scripts).
    confs = {f.display_path[: -len(".sql.conf")]: f for f in files if f.relpath.lower().endswith(".sql.conf")}
    check_files = {f.display_path[: -len(CHECK_SUFFIX)]: f for f in files if f.relpath.lower().endswith(CHECK_SUFFIX)}
    catalog = Catalog([], [], [], [], [])
    invalid: list[str] = []
    for file in files:
        name = PurePosixPath(file.relpath).name
        if not name.lower().endswith(".sql"):
            continue
        parsed = parse_name(name[: -len(".sql")] + ".sql")
        if parsed is None:
            invalid.append(file.display_path)
            continue
        if isinstance(parsed, ParsedName):
            _refuse_long_version(parsed, file.display_path)
        conf_file = confs.get(file.display_path[: -len(".sql")])
        config = parse_conf(conf_file) if conf_file else ScriptConfig()
        text = _decode(file, config.encoding).removeprefix("\ufeff")  # a BOM is not SQL
        sql = replace_placeholders(text, context, file.display_path) if config.placeholder_replacement else text
        check_file = check_files.pop(file.display_path[: -len(".sql")], None)
        if isinstance(parsed, str) and check_file is not None:
            raise ScriptError(check_file.display_path, "a callback has no checks; move them to the migration they test")
        if isinstance(parsed, str):
            event, _, desc = name[: -len(".sql")].partition("__")
            catalog.callbacks.append(Callback(event, desc.replace("_", " "), file.relpath, file.display_path, sql))
            continue
        migration = Migration(
            kind=parsed.kind,
            version=parsed.version,
            description=parsed.description,
            script=file.relpath,
            path=file.display_path,
            text=text,
            sql=sql,
            checksum=lines_checksum(sql if parsed.kind == REPEATABLE else text),
            config=config,
            checks=_checks(check_file, config, context) if check_file else [],
        )
        {VERSIONED: catalog.versioned, REPEATABLE: catalog.repeatable, UNDO: catalog.undo, BASELINE: catalog.baseline}[
            parsed.kind
        ].append(migration)
    orphans = [f.display_path for f in check_files.values() if f.display_path[: -len(".check")] not in invalid]
    if orphans:
        raise ConfigError(
            f"{', '.join(sorted(orphans))}: no script of that name beside it; a check file is named after its "
            "script plus .check (V3__add_orders.sql.check checks V3__add_orders.sql): rename or remove it"
        )
    if invalid:
        message = (
            "file names that fit no migration pattern (V<version>__<description>.sql, R__<description>.sql, "
            "U…, B…, or a callback): " + ", ".join(sorted(invalid))
        )
        if not ignore_invalid_names:
            raise ConfigError(f"{message}. Rename them, or pass --ignore-invalid-names to skip them")
        catalog.warnings.append(f"skipped {message}")
    for group in (catalog.versioned, catalog.undo, catalog.baseline):
        group.sort(key=lambda m: m.version)  # type: ignore[arg-type,return-value]
        _refuse_duplicates(group, key=lambda m: m.version, what="version")
    catalog.repeatable.sort(key=lambda m: m.description.encode("utf-16-be"))
    _refuse_duplicates(catalog.repeatable, key=lambda m: m.description, what="description")
    catalog.callbacks.sort(key=lambda c: (c.event, c.description.encode("utf-16-be")))
    return catalog


def _checks(file: ScriptFile, config: ScriptConfig, context: PlaceholderContext) -> list[Check]:
    """A script's checks, read as the script is: its encoding, and placeholders unless it turns them off."""
    text = _decode(file, config.encoding).removeprefix("\ufeff")
    sql = replace_placeholders(text, context, file.display_path) if config.placeholder_replacement else text
    return read_checks(sql, file.display_path)


def _refuse_duplicates(group: list[Migration], key, what: str) -> None:
    for previous, current in zip(group, group[1:]):
        if key(previous) == key(current):
            raise ConfigError(
                f"{previous.path} and {current.path} have the same {what} "
                f"({key(previous)}); give one of them another {what}"
            )
