"""Amazon Redshift through redshift_connector; the dialect is detected from the server, so it also drives PostgreSQL."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

import redshift_connector

from dbops.errors import ConfigError, ConnectError
from dbops.targets.base import ConnectionLost, Dialect, Session, SqlError, Target, TargetInfo, application_name
from dbops.targets.redshift_auth import AuthOptions, ClientFactory, Credentials, default_client_factory, resolve
from dbops.urls import flag_param, redact, split_url

DEFAULT_PORT = 5439
SSL_MODES = ("verify-ca", "verify-full", "disable")
PARAMS = (
    "sslmode", "lock", "secret_arn", "iam", "cluster_identifier", "workgroup", "region",
    "auto_create", "db_groups", "connect_timeout", "application_name",
)


def _fields(exc: BaseException) -> dict[str, str]:
    """The server's error fields (C: sqlstate, M: message, D: detail) when redshift_connector has them."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}


def _describe(exc: BaseException) -> str:
    fields = _fields(exc)
    if fields:
        message = fields.get("M", "").strip() or str(exc)
        return f"{message} ({fields['D'].strip()})" if fields.get("D") else message
    parts = [str(a) for a in exc.args if not isinstance(a, BaseException)] or [type(exc).__name__]
    causes = [f"{type(a).__name__}: {a}" for a in exc.args if isinstance(a, BaseException)]
    return "; ".join(parts + causes)


def _sql_error(exc: BaseException) -> Exception:
    code = _fields(exc).get("C")
    if code is None and isinstance(exc, (redshift_connector.InterfaceError, redshift_connector.OperationalError, OSError)):
        return ConnectionLost(f"lost the connection to the database: {_describe(exc)}")
    if code and code.startswith(("08", "57P")):
        return ConnectionLost(f"lost the connection to the database: {_describe(exc)}")
    return SqlError(_describe(exc), code)


_ERRORS = (redshift_connector.Error, OSError)


class RedshiftSession(Session):
    """A redshift_connector connection. It opens a transaction implicitly at the first statement."""

    def __init__(self, conn: redshift_connector.Connection) -> None:
        self.conn = conn
        self._cur: Any = None
        version, self.user, self.database, self._pid = self.query(
            "select version(), current_user, current_database(), pg_backend_pid()"
        )[0]
        self.dialect = Dialect.REDSHIFT if "redshift" in str(version).lower() else Dialect.POSTGRESQL
        self.commit()

    def _run(self, sql: str, params: Sequence[Any] | None) -> Any:
        """Execute on the session's one cursor (a new redshift_connector cursor costs a quarter of a millisecond)."""
        if self._cur is None:
            self._cur = self.conn.cursor()
        # Without params the SQL is sent as written; with params, %s and %% are special outside quotes and comments only.
        self._cur.execute(sql, tuple(params) if params is not None else None)
        return self._cur

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        try:
            count = self._run(sql, params).rowcount
            return int(count) if count is not None else -1
        except _ERRORS as exc:
            raise _sql_error(exc) from None

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        try:
            cursor = self._run(sql, params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        except _ERRORS as exc:
            raise _sql_error(exc) from None

    def query_columns(self, sql: str) -> tuple[list[str], list[tuple]]:
        try:
            cursor = self._run(sql, None)
            if not cursor.description:
                return [], []
            return [str(c[0]) for c in cursor.description], [tuple(row) for row in cursor.fetchall()]
        except _ERRORS as exc:
            raise _sql_error(exc) from None

    def commit(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.commit()
            except _ERRORS as exc:
                raise _sql_error(exc) from None

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except _ERRORS as exc:
            raise _sql_error(exc) from None

    def set_autocommit(self, on: bool) -> None:
        """redshift_connector keeps an open transaction open when autocommit is switched on: end it first."""
        if self.conn.autocommit != on:
            if self.conn.in_transaction:
                self.rollback()
            self.conn.autocommit = on

    def close(self) -> None:
        try:
            self.conn.close()
        except _ERRORS:
            pass

    def backend_pid(self) -> int:
        return int(self._pid)



class RedshiftTarget(Target):
    """`redshift://[user[:password]@]host[:5439]/db[?sslmode=…&secret_arn=…&iam=true&…]`; SSL on by default.

    `prepared_statements` is redshift_connector's `max_prepared_statements`, 0: every statement goes out as
    the unnamed prepared statement and the driver caches none. With its default (1000) the driver keeps a
    named statement per distinct SQL text, and 2.1.11 (fixed in 2.1.13, aws/amazon-redshift-python-driver#273)
    crashes with a KeyError when it evicts one after a CREATE/ALTER/DROP/ROLLBACK: those empty the cache but
    leave its LRU list holding the dropped keys. A migration session is that case, and its statements are
    mostly run once, so the cache buys little: the fixed release would also force boto3 >= 1.42.22, which
    the locked checkov does not allow. tests/targets/test_redshift_statements.py checks that the server
    holds no statement of ours and that sessions outlive thousands of statements.
    """

    prepared_statements = 0

    def __init__(self, url: str, client_factory: ClientFactory = default_client_factory) -> None:
        self.url = url
        self._client_factory = client_factory
        self._credentials: Credentials | None = None
        parts, port, params = split_url(url, "redshift", PARAMS)
        self.host = parts.hostname or ""
        self.port = port or DEFAULT_PORT
        self._database = unquote(parts.path.lstrip("/"))
        if not self.host or not self._database:
            raise ConfigError(f"redshift URL {redact(url)} needs a host and a database: redshift://user@host:5439/dev")
        self.sslmode = params.get("sslmode", "verify-ca").lower()
        if self.sslmode not in SSL_MODES:
            raise ConfigError(
                f"sslmode={self.sslmode} in {redact(url)}: redshift_connector always verifies the server certificate; "
                "use sslmode=verify-ca (the default) or verify-full (sslmode=disable is for a local test rig only)"
            )
        self.lock_kind = params.get("lock", "table")
        if self.lock_kind not in ("table", "advisory"):
            raise ConfigError(f"lock={self.lock_kind} in {redact(url)}: use lock=table (Redshift) or lock=advisory (PostgreSQL only)")
        try:
            self.connect_timeout = float(params.get("connect_timeout", "10"))
        except ValueError:
            raise ConfigError(f"connect_timeout={params['connect_timeout']} in {redact(url)} is not a number of seconds") from None
        self.application_name = params.get("application_name") or application_name()
        self.auth = AuthOptions(
            user=unquote(parts.username or ""),
            password=unquote(parts.password) if parts.password is not None else None,
            database=self._database,
            secret_arn=params.get("secret_arn") or None,
            iam=flag_param(params, "iam", url),
            cluster_identifier=params.get("cluster_identifier") or None,
            workgroup=params.get("workgroup") or None,
            region=params.get("region") or None,
            auto_create=flag_param(params, "auto_create", url),
            db_groups=tuple(g for g in params.get("db_groups", "").split(",") if g),
        )
        self.auth.check()

    def credentials(self) -> Credentials:
        """The user and password to connect with, fetched once (IAM ones again shortly before they expire)."""
        if self._credentials is None or not self._credentials.fresh():
            self._credentials = resolve(self.auth, self._client_factory)
        return self._credentials

    def connect(self) -> RedshiftSession:
        credentials = self.credentials()
        try:
            conn = redshift_connector.connect(
                host=self.host,
                port=self.port,
                database=self._database,
                user=credentials.user,
                password=credentials.password,
                ssl=self.sslmode != "disable",
                sslmode=self.sslmode if self.sslmode != "disable" else "verify-ca",
                timeout=int(self.connect_timeout) or None,
                application_name=self.application_name,
                tcp_keepalive=True,
                max_prepared_statements=self.prepared_statements,
            )
        except _ERRORS as exc:
            raise ConnectError(f"cannot connect to {self.redacted_url} ({self._ssl}): {self._scrub(_describe(exc), credentials)}") from None
        try:
            session = RedshiftSession(conn)  # its first query still under the connect timeout
        except SqlError:
            conn.close()
            raise  # the server answered: connected, and the first query failed (a statement timeout, say)
        except ConnectError as exc:
            conn.close()
            detail = str(exc).removeprefix("lost the connection to the database: ")
            raise ConnectError(f"cannot connect to {self.redacted_url} ({self._ssl}): {self._scrub(detail, credentials)}") from None
        sock = getattr(conn, "_usock", None)
        if sock is not None:
            sock.settimeout(None)  # the timeout bounds connecting only, not a long VACUUM
        return session

    @staticmethod
    def _scrub(message: str, credentials: Credentials) -> str:
        return message.replace(credentials.password, "***") if credentials.password else message

    @property
    def redacted_url(self) -> str:
        return redact(self.url)

    @property
    def user(self) -> str:
        return self.auth.user or self.credentials().user

    @property
    def database(self) -> str:
        return self._database

    @property
    def _ssl(self) -> str:
        return f"SSL {self.info().ssl}"

    def info(self) -> TargetInfo:
        ssl = "off (sslmode=disable)" if self.sslmode == "disable" else f"on (sslmode={self.sslmode})"
        return TargetInfo(url=self.redacted_url, driver="redshift_connector", ssl=ssl)
