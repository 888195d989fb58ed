"""Environments: the named targets of Flyway 10's `flyway.toml`, plus dbops's own additions, and how to pick them.

Flyway's part, read as Flyway reads it::

    [flyway]
    environment = "dev"                     # the default environment
    locations = ["filesystem:sql"]          # [flyway] settings apply to every environment
    [environments.dev]
    url = "jdbc:postgresql://localhost:5432/dev"   # jdbc:redshift://, jdbc:redshift:iam://, or a dbops URL
    user = "migrator"
    schemas = ["analytics"]
    [environments.dev.flyway]               # Flyway's per-environment overrides (locations, defaultSchema, …)
    [environments.dev.flyway.placeholders]  # this environment's placeholders (added to [flyway.placeholders])
    days = "30"

dbops's part lives in a root table Flyway keeps and ignores (Flyway stores unknown root namespaces for its
plugins; its `[environments.<id>]` tables know a fixed set of keys)::

    [dbops.environments.prod-eu]
    wave = 2                                # rollout order: 0 first
    tags = { region = "eu-west-1", tenant = "acme" }
    password_variable = "PROD_EU_PASSWORD"  # default DBOPS_PASSWORD_PROD_EU
    secret_arn = "arn:aws:secretsmanager:…" # or iam = true with cluster_identifier= / workgroup=, region=

A password is never written in the file: `password = "${env.NAME}"` (Flyway's resolver) names the variable,
a literal password is refused. Selection (`-e`, DBOPS_ENVIRONMENT): see `select`.
"""
from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from dbops.config import Settings, conf_problem, read_flyway_conf, settings_from
from dbops.errors import ConfigError, ConnectError, DbopsError
from dbops.urls import SECRET_PARAMS, redact, scheme_of

FLYWAY_TOML = "flyway.toml"
FILE_VARIABLE = "DBOPS_FLYWAY_TOML"  # another path than ./flyway.toml
SELECT_VARIABLE = "DBOPS_ENVIRONMENT"
PASSWORD_PREFIX = "DBOPS_PASSWORD_"
DEFAULT_NAME = "default"  # Flyway's environment when flyway.environment is not set
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_RESOLVER = re.compile(r"^\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}$")
# The keys Flyway 10 knows in [environments.<id>]; dbops reads url, user, password (a reference), schemas, flyway.
FLYWAY_KEYS = {
    "url", "user", "password", "driver", "schemas", "jarDirs", "connectRetries", "connectRetriesInterval",
    "initSql", "jdbcProperties", "resolvers", "provisioner", "flyway", "displayName",
}
AUTH_KEYS = ("secret_arn", "iam", "cluster_identifier", "workgroup", "region")
DBOPS_KEYS = ("wave", "tags", "password_variable", *AUTH_KEYS)
# JDBC URL parameters → the dbops URL's (None: dropped, SSL is on by default).
JDBC_PARAMS = {
    "sslmode": "sslmode",
    "applicationname": "application_name",
    "connecttimeout": "connect_timeout",
    "logintimeout": "connect_timeout",
    "ssl": None,
}


@dataclass(frozen=True)
class Environment:
    """One named target. Holds where the password comes from, never a password."""

    name: str
    url: str  # a dbops URL (postgresql://, redshift://, …) without a password
    user: str = ""
    schemas: tuple[str, ...] = ()
    placeholders: dict[str, str] = field(default_factory=dict)
    wave: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    password_variable: str = ""  # the environment variable holding its password
    secret_arn: str | None = None
    iam: bool = False
    cluster_identifier: str | None = None
    workgroup: str | None = None
    region: str | None = None
    conf: dict[str, str] = field(default_factory=dict)  # its Flyway settings, keyed as read_flyway_conf gives them
    file: str = FLYWAY_TOML

    def password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Its password from its own variable (None when unset; a secret or IAM may provide one instead)."""
        environ = os.environ if environ is None else environ
        return environ.get(self.password_variable) or None

    def target_url(self, environ: Mapping[str, str] | None = None, with_password: bool = True) -> str:
        """The URL dbops connects with: the user, its own password (with_password) and its auth parameters."""
        parts = urlsplit(self.url)
        user = self.user or unquote(parts.username or "")
        password = self.password(environ) if with_password else None
        userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        hostport = parts.netloc.rpartition("@")[2]
        netloc = f"{userinfo}@{hostport}" if userinfo else hostport
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        present = {k.lower() for k, _ in pairs}
        auth = {"secret_arn": self.secret_arn, "iam": "true" if self.iam else None, "cluster_identifier": self.cluster_identifier,
                "workgroup": self.workgroup, "region": self.region}
        pairs += [(k, v) for k, v in auth.items() if v and k not in present]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(pairs, safe="/:")))

    @property
    def redacted_url(self) -> str:
        """The target URL as it may be shown: no password."""
        return redact(self.target_url(with_password=False))

    def matches(self, term: str) -> bool:
        """True when the selector term (a name, a glob, `key=value`, several joined by `&`) picks this one."""
        return all(self._matches_one(part.strip()) for part in term.split("&"))

    def _matches_one(self, part: str) -> bool:
        key, sep, value = part.partition("=")
        if not sep:
            return fnmatch.fnmatchcase(self.name, part)
        key = key.strip()
        if key == "wave":
            return fnmatch.fnmatchcase(str(self.wave), value.strip())
        if key == "name":
            return fnmatch.fnmatchcase(self.name, value.strip())
        return key in self.tags and fnmatch.fnmatchcase(self.tags[key], value.strip())


@dataclass(frozen=True)
class EnvironmentsFile:
    """What a flyway.toml declares: its environments (in file order) and the default one."""

    path: str
    environments: dict[str, Environment]
    default: str | None


def toml_path(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The flyway.toml to read: `path`, else DBOPS_FLYWAY_TOML, else ./flyway.toml."""
    environ = os.environ if environ is None else environ
    return Path(path or environ.get(FILE_VARIABLE) or FLYWAY_TOML)


def load_environments(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Environment]:
    """The environments of a flyway.toml by name, in file order ({} when there is no file)."""
    return load_file(path, environ).environments


def load_file(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> EnvironmentsFile:
    """Read a flyway.toml (see the module docstring). Bad content: ConfigError naming the file (and line)."""
    where = toml_path(path, environ)
    explicit = bool(path or (environ if environ is not None else os.environ).get(FILE_VARIABLE))
    try:
        if not where.is_file():
            if explicit:
                raise ConfigError(f"{where}: environments file not found")
            return EnvironmentsFile(str(where), {}, None)
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the environments file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: byte {exc.start} is not valid UTF-8; save the file as UTF-8") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise ConfigError(f"{where}{':' + at[1] if at else ''}: not valid TOML: {exc}; fix the syntax") from None
    return _parse(document, _Lines(str(where), text))


class _Lines:
    """Finds the line of a key in the TOML text, for messages: the text is indexed once, each lookup is a dict's."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.headers: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        header = ""
        for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
            line = re.sub(r"[\s\"']", "", raw.split("#", 1)[0])
            if line.startswith("[") and not line.startswith("[["):
                header = line.strip("[]")
                self.headers.setdefault(header, number)
            elif "=" in line:
                self.keys.setdefault((header, line.split("=", 1)[0]), number)

    def at(self, table: str, key: str) -> str:
        """`path:line` of `key` in `[table]` (also written dotted, `a.key =` under `[table-minus-a]`), else of the
        table's header, else `path`."""
        parts = table.split(".") if table else []
        found = [self.keys.get((table, key))]
        found += [self.keys.get((".".join(parts[:i]), ".".join([*parts[i:], key]))) for i in range(len(parts))]
        numbers = [n for n in found if n is not None]
        if numbers:
            return f"{self.path}:{min(numbers)}"
        return f"{self.path}:{self.headers[table]}" if table in self.headers else self.path


def _parse(document: dict[str, Any], lines: _Lines) -> EnvironmentsFile:
    flyway = document.get("flyway", {})
    if not isinstance(flyway, dict):
        raise ConfigError(f"{lines.at('', 'flyway')}: `flyway` must be a table ([flyway])")
    declared = document.get("environments", {})
    if not isinstance(declared, dict):
        raise ConfigError(f"{lines.at('', 'environments')}: `environments` must hold tables ([environments.<name>])")
    dbops = document.get("dbops", {})
    own = dbops.get("environments", {}) if isinstance(dbops, dict) else {}
    if not isinstance(own, dict):
        raise ConfigError(f"{lines.at('dbops', 'environments')}: `dbops.environments` must hold tables ([dbops.environments.<name>])")
    for name in own:
        if name not in declared:
            raise ConfigError(
                f"{lines.at(f'dbops.environments.{name}', 'wave')}: [dbops.environments.{name}] has no [environments.{name}]; "
                f"declare the environment (url, user, schemas) there, or fix the name (known: {_names(declared)})"
            )
    _refuse_secrets(flyway, "flyway", lines, "each environment's password variable (DBOPS_PASSWORD_<NAME>)")
    root = _checked_conf(flyway, "flyway", lines)
    environments: dict[str, Environment] = {}
    for name, table in declared.items():
        extra = own.get(name, {})
        if not isinstance(table, dict) or not isinstance(extra, dict):
            raise ConfigError(f"{lines.path}: [environments.{name}] must be a table")
        environments[name] = _environment(name, table, extra, root, lines)
    _check_variables(environments, lines.path)
    default = flyway.get("environment")
    if default is not None and (not isinstance(default, str) or default not in environments):
        raise ConfigError(
            f"{lines.at('flyway', 'environment')}: flyway.environment = {default!r} is not one of the environments "
            f"({_names(environments)}); fix the name or declare [environments.{default}]"
        )
    if default is None and DEFAULT_NAME in environments:
        default = DEFAULT_NAME
    return EnvironmentsFile(lines.path, environments, default)


def _environment(name: str, table: dict[str, Any], extra: dict[str, Any], root: dict[str, str], lines: _Lines) -> Environment:
    section = f"environments.{name}"
    if not NAME.match(name):
        raise ConfigError(f"{lines.at(section, 'url')}: environment name {name!r}: use letters, digits, '-' and '_' (starting with a letter or digit)")
    for key in table:
        if key in DBOPS_KEYS:
            raise ConfigError(
                f"{lines.at(section, key)}: `{key}` is dbops's, not Flyway's: move it to [dbops.environments.{name}], "
                "where Flyway does not read it"
            )
        if key not in FLYWAY_KEYS:
            raise ConfigError(f"{lines.at(section, key)}: unknown key `{key}` in [{section}]; Flyway knows {', '.join(sorted(FLYWAY_KEYS))}")
    for key in extra:
        if key not in DBOPS_KEYS:
            raise ConfigError(f"{lines.at(f'dbops.{section}', key)}: unknown key `{key}` in [dbops.{section}]; known: {', '.join(DBOPS_KEYS)}")
    variable = _password_variable(name, table, extra, lines)
    for where, values in ((f"{section}.flyway", table.get("flyway")), (f"{section}.jdbcProperties", table.get("jdbcProperties"))):
        _refuse_secrets(values, where, lines, variable)
    url = table.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{lines.at(section, 'url')}: [{section}] needs url = \"jdbc:redshift://host:5439/db\" (or jdbc:postgresql://…)")
    dbops_url, implied = dbops_url_of(url.strip(), lines.at(section, "url"))
    user = table.get("user", "")
    if not isinstance(user, str) or "${" in user:
        raise ConfigError(f"{lines.at(section, 'user')}: user must be a plain string (dbops resolves ${{env.NAME}} in password only)")
    schemas = _schemas(table.get("schemas", []), lines.at(section, "schemas"))
    overrides = table.get("flyway", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{lines.at(section, 'flyway')}: [{section}.flyway] must be a table of Flyway settings")
    own_conf = _checked_conf(overrides, f"{section}.flyway", lines)
    conf = {**root, **({"schemas": ",".join(schemas)} if schemas else {}), **own_conf}
    placeholders = {k[len("placeholders."):].lower(): v for k, v in own_conf.items() if k.startswith("placeholders.")}
    auth = {**implied, **{k: extra[k] for k in AUTH_KEYS if k in extra}}
    for key in ("secret_arn", "cluster_identifier", "workgroup", "region"):
        if key in auth and not (isinstance(auth[key], str) and auth[key].strip()):
            raise ConfigError(f"{lines.at(f'dbops.{section}', key)}: {key} must be a non-empty string")
    if "iam" in auth and not isinstance(auth["iam"], bool):
        raise ConfigError(f"{lines.at(f'dbops.{section}', 'iam')}: iam must be true or false")
    if (auth.get("secret_arn") or auth.get("iam")) and scheme_of(dbops_url) != "redshift":
        raise ConfigError(f"{lines.at(f'dbops.{section}', 'secret_arn' if 'secret_arn' in auth else 'iam')}: "
                          "secret_arn and iam are for Redshift environments (jdbc:redshift:// or redshift:// URLs)")
    return Environment(
        name=name,
        url=dbops_url,
        user=user,
        schemas=tuple(schemas),
        placeholders=placeholders,
        wave=_wave(extra.get("wave", 0), lines.at(f"dbops.{section}", "wave")),
        tags=_tags(extra.get("tags", {}), lines.at(f"dbops.{section}", "tags")),
        password_variable=variable,
        secret_arn=auth.get("secret_arn"),
        iam=bool(auth.get("iam")),
        cluster_identifier=auth.get("cluster_identifier"),
        workgroup=auth.get("workgroup"),
        region=auth.get("region"),
        conf=conf,
        file=lines.path,
    )


def default_password_variable(name: str) -> str:
    """DBOPS_PASSWORD_<NAME>: the name upper-cased, '-' (and anything not a letter or digit) as '_'."""
    return PASSWORD_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _password_variable(name: str, table: dict[str, Any], extra: dict[str, Any], lines: _Lines) -> str:
    section = f"environments.{name}"
    chosen = extra.get("password_variable")
    if chosen is not None and not (isinstance(chosen, str) and VARIABLE.match(chosen)):
        raise ConfigError(f"{lines.at(f'dbops.{section}', 'password_variable')}: password_variable must name an environment variable (letters, digits, _)")
    if "password" in table:
        value = table["password"]
        match = ENV_RESOLVER.match(value) if isinstance(value, str) else None
        if not match and isinstance(value, str) and value.startswith("${"):
            raise ConfigError(
                f"{lines.at(section, 'password')}: dbops resolves only ${{env.NAME}} in password; write password = \"${{env.NAME}}\", "
                f"or set {chosen or default_password_variable(name)}, or use secret_arn / iam in [dbops.{section}]"
            )
        if not match:
            raise ConfigError(
                f"{lines.at(section, 'password')}: a password is written in the file; remove it and set "
                f"{chosen or default_password_variable(name)} in the environment (or write password = \"${{env.NAME}}\", "
                f"or use secret_arn / iam in [dbops.{section}])"
            )
        if chosen and chosen != match[1]:
            raise ConfigError(f"{lines.at(section, 'password')}: password names ${{env.{match[1]}}} but password_variable is {chosen}; keep one")
        return match[1]
    return chosen or default_password_variable(name)


def _refuse_secrets(values: Any, table: str, lines: _Lines, variable: str) -> None:
    """A password (or another secret: token, secret, …) in `[table]`, where dbops never reads one, is a ConfigError
    naming its line and the variable to set instead; `[table]` may also be an inline table (`jdbcProperties = {…}`)."""
    if not isinstance(values, dict):
        return
    for key in values:
        if key.lower() in SECRET_PARAMS:
            parent, _, own = table.rpartition(".")
            where = lines.at(table, key)
            if where == lines.path or where == lines.at(table, "\0"):  # no line of its own: the inline table's
                where = lines.at(parent, own)
            raise ConfigError(
                f"{where}: `{key}` in [{table}]: dbops never reads a password from there, and a password is never written "
                f"in the file; remove it and set {variable} instead (or write password = \"${{env.NAME}}\" in "
                "[environments.<name>], or use secret_arn / iam in [dbops.environments.<name>])"
            )


# What the drivers say when the server asked for a password and none was sent (libpq; redshift_connector).
NO_PASSWORD = re.compile(r"no password supplied|but no password was provided", re.I)


def with_password_hint(environment: Environment, error: DbopsError, environ: Mapping[str, str] | None = None) -> DbopsError:
    """`error`, or — when the server asked for a password and the environment's variable is unset (and no secret or
    IAM stands in) — a ConnectError that also says which variable to set."""
    unset = not environment.password(environ) and not environment.secret_arn and not environment.iam
    if not (isinstance(error, ConnectError) and unset and NO_PASSWORD.search(str(error))):
        return error
    first, _, rest = str(error).strip().partition("\n")
    hint = f"; set {environment.password_variable} (environment {environment.name}'s password), it is not set"
    return ConnectError(first + hint + (f"\n{rest}" if rest else ""))


def _check_variables(environments: dict[str, Environment], path: str) -> None:
    owners: dict[str, str] = {}
    for env in environments.values():
        other = owners.setdefault(env.password_variable, env.name)
        if other != env.name:
            raise ConfigError(
                f"{path}: environments {other} and {env.name} would both read their password from {env.password_variable}; "
                f"give one a password_variable in [dbops.environments.{env.name}]"
            )


def _schemas(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [s for s in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ConfigError(f"{where}: schemas must be a list of names, like schemas = [\"analytics\"]")
    return [s.strip() for s in value]


def _wave(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: wave must be a whole number, 0 or more (0 goes first)")
    return value


def _tags(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: tags must be a table, like tags = {{ region = \"eu-west-1\" }}")
    tags = {}
    for key, tag in value.items():
        if not isinstance(tag, (str, int)) or isinstance(tag, bool) or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise ConfigError(f"{where}: tag {key!r}: names are letters, digits, '_', '.', '-'; values are strings")
        tags[key] = str(tag)
    return tags


def flyway_conf(table: dict[str, Any]) -> dict[str, str]:
    """A TOML `[flyway]` table as read_flyway_conf gives flyway.conf: lists comma-joined, `placeholders.<name>` keys,
    child namespaces (flyway.postgresql, …) left out."""
    conf: dict[str, str] = {}
    for key, value in table.items():
        if key == "placeholders" and isinstance(value, dict):
            conf.update({f"placeholders.{name}": _text(v) for name, v in value.items()})
        elif isinstance(value, list):
            conf[key] = ",".join(_text(v) for v in value)
        elif not isinstance(value, dict):
            conf[key] = _text(value)
    return conf


def _checked_conf(table: dict[str, Any], name: str, lines: _Lines) -> dict[str, str]:
    """flyway_conf of `[name]`; a value dbops cannot use (outOfOrder = "maybe") is a ConfigError naming its line."""
    conf = flyway_conf(table)
    for key, value in conf.items():
        problem = conf_problem(key, value)
        if problem:
            raise ConfigError(f"{lines.at(name, key)}: {key} in [{name}]: {problem}")
    return conf


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def dbops_url_of(url: str, where: str) -> tuple[str, dict[str, Any]]:
    """A flyway.toml URL as a dbops URL, plus the auth it implies (jdbc:redshift:iam:// → iam, cluster, region)."""
    if "${" in url:
        raise ConfigError(f"{where}: url {redact(url)}: dbops resolves ${{env.NAME}} in password only; write the URL out")
    lowered = url.lower()
    implied: dict[str, Any] = {}
    if lowered.startswith("jdbc:redshift:iam://"):
        rest = url[len("jdbc:redshift:iam://"):]
        scheme, implied = "redshift", _iam_from_host(_split(f"x://{rest}", url, where).hostname or "", where)
    elif lowered.startswith("jdbc:redshift://"):
        scheme, rest = "redshift", url[len("jdbc:redshift://"):]
    elif lowered.startswith("jdbc:postgresql://"):
        scheme, rest = "postgresql", url[len("jdbc:postgresql://"):]
    elif lowered.startswith("jdbc:"):
        raise ConfigError(f"{where}: url {redact(url)}: dbops drives Redshift and PostgreSQL; use jdbc:redshift://… or jdbc:postgresql://…")
    else:
        if scheme_of(url) not in ("postgresql", "postgres", "redshift", "redshift-data"):
            raise ConfigError(f"{where}: url {redact(url)}: use jdbc:redshift://…, jdbc:postgresql://… or a dbops URL (redshift://…)")
        _refuse_password(url, where)
        return url, implied
    parts = _split(f"{scheme}://{rest}", url, where)
    _refuse_password(f"{scheme}://{rest}", where)
    params: list[tuple[str, str]] = []
    user = unquote(parts.username or "")
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        lowered_key = key.lower()
        if lowered_key == "user":
            user = value
        elif lowered_key == "ssl" and value.lower() == "false":
            params.append(("sslmode", "disable"))
        elif lowered_key in JDBC_PARAMS:
            if JDBC_PARAMS[lowered_key]:
                params.append((JDBC_PARAMS[lowered_key], value))
        else:
            raise ConfigError(
                f"{where}: JDBC parameter {key} in {redact(url)} has no dbops equivalent; remove it "
                f"(understood: {', '.join(sorted(JDBC_PARAMS))}, user)"
            )
    hostport = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}@{hostport}" if user else hostport
    return urlunsplit((scheme, netloc, parts.path, urlencode(params, safe="/:"), "")), implied


def _split(url: str, written: str, where: str) -> SplitResult:
    """urlsplit(url), its host parsed; a malformed one (an unclosed `[` of an IPv6 address, say) is a ConfigError
    naming `where` and the URL as `written`."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - parses a bracketed host, which may raise
    except ValueError as exc:
        raise ConfigError(f"{where}: url {redact(written)}: {exc}; fix the host (an IPv6 address is written [::1])") from None
    return parts


def _refuse_password(url: str, where: str) -> None:
    parts = _split(url, url, where)
    if parts.password or any(k.lower() == "password" for k, _ in parse_qsl(parts.query)):
        raise ConfigError(f"{where}: the url holds a password; remove it and set the environment's password variable instead")


def _iam_from_host(host: str, where: str) -> dict[str, Any]:
    """cluster.xxxx.region.redshift.amazonaws.com → cluster; workgroup.account.region.redshift-serverless… → workgroup."""
    labels = host.split(".")
    if len(labels) >= 4 and labels[3] == "redshift":
        return {"iam": True, "cluster_identifier": labels[0], "region": labels[2]}
    if len(labels) >= 4 and labels[3] == "redshift-serverless":
        return {"iam": True, "workgroup": labels[0], "region": labels[2]}
    return {"iam": True}  # cluster_identifier / workgroup and region then come from [dbops.environments.<id>]


def _names(environments: Mapping[str, Any], limit: int = 20) -> str:
    names = list(environments)
    if not names:
        return "none declared"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} in all)"


def select(environments: Mapping[str, Environment], pattern: str) -> list[Environment]:
    """The environments a selector picks, ordered by wave, then as declared.

    A selector is one or more terms separated by `,` (any of them); a term is a name (`prod`), a glob
    (`tenant-*`, `*`), `key=value` on a tag (`region=eu-west-1`, the value may be a glob) or on the wave
    (`wave=1`), or several of these joined by `&` (all of them: `tenant-*&region=eu-*`). A term that picks
    nothing is an error (exit 2) naming the known environments.
    """
    terms = [t.strip() for t in pattern.split(",") if t.strip()]
    if not terms:
        raise ConfigError(f"--environment {pattern!r}: name an environment, a glob (tenant-*) or a tag (region=eu-west-1)")
    chosen: dict[str, Environment] = {}
    for term in terms:
        picked = [env for env in environments.values() if env.matches(term)]
        if not picked:
            raise ConfigError(f"--environment {term!r} matches no environment; known: {_names(environments)}")
        chosen.update({env.name: env for env in picked})
    order = {name: i for i, name in enumerate(environments)}
    return sorted(chosen.values(), key=lambda env: (env.wave, order[env.name]))


def selected(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> list[Environment] | None:
    """The environments a command runs on: `--environment` (flags["environment"]), else DBOPS_ENVIRONMENT, else —
    when no `--url`/DBOPS_URL is given — flyway.environment of the flyway.toml. None: no environments, the
    URL (or the embedded database) as before. An explicit URL together with a selection is an error, and so is
    DBOPS_PASSWORD with environments (each reads its own variable, so no password reaches another's server)."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    pattern = flags.get("environment") or environ.get(SELECT_VARIABLE) or None
    url_given = flags.get("url") or environ.get("DBOPS_URL")
    if pattern and url_given:
        given = "--url" if flags.get("url") else "DBOPS_URL"
        chosen = "--environment" if flags.get("environment") else SELECT_VARIABLE
        raise ConfigError(f"{given} and {chosen} both name the target: give one (the environments come from {toml_path(path, environ)})")
    if not pattern and url_given:
        return None
    declared = load_file(path, environ)
    if not pattern:
        if declared.default is None:
            return None
        pattern = declared.default
    if not declared.environments:
        raise ConfigError(f"--environment {pattern!r}: {declared.path} declares no environments ([environments.<name>] tables)")
    chosen_envs = select(declared.environments, pattern)
    refuse_shared_password(chosen_envs, environ)
    return chosen_envs


def refuse_shared_password(environments: list[Environment], environ: Mapping[str, str] | None = None) -> None:
    """DBOPS_PASSWORD is refused with environments: each reads its own variable, so no password reaches another's server."""
    environ = os.environ if environ is None else environ
    if environ.get("DBOPS_PASSWORD"):
        raise ConfigError(
            "DBOPS_PASSWORD is set, but environments take their password from their own variable "
            f"({', '.join(e.password_variable for e in environments[:3])}{', …' if len(environments) > 3 else ''}): "
            "unset DBOPS_PASSWORD and set those"
        )


def settings_for(
    environment: Environment,
    flags: Mapping[str, Any] | Settings | None = None,
    environ: Mapping[str, str] | None = None,
    conf: dict[str, str] | None = None,
) -> Settings:
    """The Settings of one environment: flags, then DBOPS_* variables, then the environment's own settings
    (schemas, [environments.<id>.flyway] and its placeholders), then flyway.toml's [flyway], then flyway.conf
    (`conf`, default read_flyway_conf()), then the defaults.

    Given Settings already resolved instead of flags (a Dagster resource's, say), the environment's own settings
    replace theirs where it sets them (see `on_top_of`)."""
    if isinstance(flags, Settings):
        return on_top_of(environment, flags)
    base = read_flyway_conf() if conf is None else conf
    return settings_from(flags, environ, {**base, **environment.conf})


def on_top_of(environment: Environment, base: Settings) -> Settings:
    """`base` with what the environment (and flyway.toml's [flyway]) sets: locations, default schema and schemas, table,
    outOfOrder, mixed; its placeholders are added to the base's (the environment's value wins for the same name)."""
    conf = environment.conf
    mine = settings_from({}, {}, conf)
    return replace(
        base,
        locations=mine.locations if "locations" in conf else base.locations,
        schema=mine.schema if conf.get("defaultSchema") or conf.get("schemas") else base.schema,
        schemas=mine.schemas if conf.get("schemas") else base.schemas,
        table=mine.table if "table" in conf else base.table,
        placeholders={**base.placeholders, **mine.placeholders},
        out_of_order=mine.out_of_order if "outOfOrder" in conf else base.out_of_order,
        mixed=mine.mixed if "mixed" in conf else base.mixed,
    )
