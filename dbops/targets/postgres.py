"""PostgreSQL through psycopg 3."""
from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dbops.errors import ConfigError, ConnectError
from dbops.scripts.statements import iter_statements, pieces
from dbops.targets.base import (
    SCRIPT_STARTED_MARK,
    BatchItem,
    BatchResult,
    Bookkeeping,
    ConnectionLost,
    Dialect,
    Session,
    SqlError,
    Target,
    TargetInfo,
    TransactionResult,
    Verify,
    application_name,
)
from dbops.urls import redact

DBOPS_PARAMS = ("lock",)
# Connection parameters whose values libpq checks before it connects (libpq 18's values), so a bad one is bad input
# named here rather than a failure to connect.
CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
    "sslnegotiation": ("postgres", "direct"),
    "sslcertmode": ("disable", "allow", "require"),
}
INTEGERS = ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
# Cancelled or timed out (57014), or a lock not granted in time (55P03): replaying the script to find the
# statement would run, or wait, all over again; such a failure is reported without naming a statement.
_NOT_REPLAYED = ("57014", "55P03")
# Between statements sent as one query: the newline ends a trailing `--` comment before the `;`.
_SEPARATOR = "\n;\n"
PIECE_CHARS = 1 << 20  # a big script travels in pieces of about this many characters, so it is never copied whole


# What a template leaves as written: quoted strings and names, and comments (redshift_connector's rule, see Session).
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")


@lru_cache(maxsize=512)
def template(sql: str) -> str:
    """dbops's template as psycopg formats it: psycopg reads `%` everywhere, so each `%` in quotes or comments is
    doubled (a history table named `h%s` stays `h%s`); placeholders outside them stay as they are."""
    return _QUOTED.sub(lambda quoted: quoted[0].replace("%", "%%"), sql) if "%" in sql else sql


def _part_at(parts: list[str], position: str) -> tuple[int | None, int | None]:
    """The part that holds the 1-based character `position` of the joined query, and the offset in it."""
    offset = int(position) - 1
    for index, part in enumerate(parts):
        if offset < len(part):
            return index, offset
        offset -= len(part) + len(_SEPARATOR)
    return None, None


def _bound(mogrify: Any, sql: str, params: Sequence[Any] | None) -> str:
    """A bookkeeping statement with its parameters in it, as it is sent inside a batch."""
    return sql if params is None else mogrify(template(sql), params)


def _batch_counts(results: list[tuple[str | None, int]], items: int) -> BatchResult:
    """Statement counts and rows per script from a batch's command tags.

    Each script's results sit between its mark (after `SAVEPOINT`) and its two bookkeeping inserts. A script
    that issues SAVEPOINT itself makes the tags ambiguous: then counts and rows are left unknown.
    """
    starts = [i for i, (tag, _) in enumerate(results) if tag == "SAVEPOINT"]
    if len(starts) != items:
        return BatchResult(committed=items)
    ends = [*starts[1:], len(results) - 1]
    counts, rows = [], []
    for start, end in zip(starts, ends):
        own = results[start + 2 : end - 2]
        counts.append(len(own))
        rows.append(sum(max(count, 0) for _, count in own))
    return BatchResult(committed=items, rows=rows, statement_counts=counts)


def _sql_error(exc: psycopg.Error) -> Exception:
    if isinstance(exc, psycopg.OperationalError) and (exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))):
        return ConnectionLost(f"lost the connection to the database: {str(exc).strip()}")
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    return SqlError(message, exc.sqlstate)


def end_client_copy(pgconn: Any) -> psycopg.Error | None:
    """End the COPY that psycopg refused in the middle of a query, and read the query's remaining results: a COPY
    FROM STDIN fails (so its transaction aborts, and no COMMIT after it commits), a COPY TO STDOUT is read to its
    end and dropped. Returns the first error among the results, or None."""
    error = None
    saved, pgconn.nonblocking = pgconn.nonblocking, 0
    try:
        while (result := pgconn.get_result()) is not None:
            if result.status == psycopg.pq.ExecStatus.COPY_IN:
                pgconn.put_copy_end(b"dbops sends no COPY data: load the rows with INSERT or COPY from a server file")
            elif result.status == psycopg.pq.ExecStatus.COPY_OUT:
                while pgconn.get_copy_data(0)[0] >= 0:
                    pass
            elif result.status == psycopg.pq.ExecStatus.FATAL_ERROR and error is None:
                error = psycopg.errors.error_from_result(result)
    finally:
        pgconn.nonblocking = saved
    return error


class PostgresSession(Session):
    """A psycopg 3 connection; dialect detected from `version()`."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        version, self.user, self.database = self.query("select version(), current_user, current_database()")[0]
        self.dialect = Dialect.REDSHIFT if "redshift" in str(version).lower() else Dialect.POSTGRESQL
        self.conn.commit()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        try:
            with self.conn.cursor() as cur:
                if params is None:
                    self._send(cur, sql)
                else:
                    cur.execute(template(sql), params)
                return cur.rowcount
        except psycopg.Error as exc:
            raise _sql_error(exc) from None

    def _send(self, cur: psycopg.Cursor, sql: str) -> None:
        """Run a script's SQL (one query, maybe several statements). A COPY that streams through the client, which
        psycopg refuses mid-query, is ended (end_client_copy) and the query's first error raised in its place: the
        session stays usable, and what the server committed or rolled back is what the caller reports."""
        try:
            cur.execute(sql, prepare=False)
        except psycopg.ProgrammingError:
            if self.conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.ACTIVE:
                raise
            error = end_client_copy(self.conn.pgconn)
            if error is not None:
                raise error from None

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql if params is None else template(sql), params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise _sql_error(exc) from None

    def query_columns(self, sql: str) -> tuple[list[str], list[tuple]]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, prepare=False)
                return [c.name for c in cur.description or []], cur.fetchall()
        except psycopg.Error as exc:
            raise _sql_error(exc) from None

    def run_transaction(self, statements: list[str], bookkeeping: Bookkeeping, verify: Verify | None = None) -> TransactionResult:
        """BEGIN, the statements, the bookkeeping rows and COMMIT as one simple query: one round trip (two, with
        `verify` called between them)."""
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.rollback()
        clock = time.perf_counter()
        mogrify = psycopg.ClientCursor(self.conn).mogrify
        parts = ["BEGIN", *statements, *(_bound(mogrify, sql, params) for sql, params in bookkeeping(None)), "COMMIT"]
        sent = parts if verify is None else parts[: len(statements) + 1]
        rows: list[int] = []
        saved, self.conn.autocommit = self.conn.autocommit, True
        try:
            with self.conn.cursor() as cur:
                self._send(cur, _SEPARATOR.join(sent))
                rows.append(cur.rowcount)
                while cur.nextset():
                    rows.append(cur.rowcount)
                if verify is not None:
                    self._verify(verify)
                    cur.execute(_SEPARATOR.join(parts[len(sent) :]))
        except psycopg.Error as exc:
            error = _sql_error(exc)
            if not isinstance(error, SqlError):
                raise error from None
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
            failed = _part_at(sent, exc.diag.statement_position)[0] if exc.diag.statement_position else None
            if failed is None:
                failed = None if exc.sqlstate in _NOT_REPLAYED or len(rows) > len(statements) else self._replay(statements)
            elif not 1 <= failed <= len(statements) or len(rows) > len(statements):
                failed = None
            else:
                failed -= 1
            return TransactionResult([], 0, failed_index=failed, error=error)
        finally:
            if not self.conn.broken:  # a lost connection reports itself above; do not trade it for another error
                self.conn.autocommit = saved
        return TransactionResult(rows[1 : len(statements) + 1], int((time.perf_counter() - clock) * 1000))

    def _verify(self, verify: Verify) -> None:
        """Call `verify` inside the open transaction; what it raises rolls the transaction back first."""
        try:
            verify()
        except Exception:
            if not self.conn.broken and self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
            raise

    def run_script(self, sql: str, statements, bookkeeping: Bookkeeping, verify: Verify | None = None) -> TransactionResult:
        """The script as written, in pieces that end at statement boundaries, in one transaction; each piece
        behind a savepoint, so a failure without a position is found by replaying that piece only. `verify`
        runs after the last piece, in the same transaction."""
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.rollback()
        clock = time.perf_counter()
        rows: list[int] = []
        saved, self.conn.autocommit = self.conn.autocommit, True
        try:
            with self.conn.cursor() as cur:
                cur.execute("BEGIN")
                for start, piece in pieces(sql, PIECE_CHARS):
                    try:
                        cur.execute("SAVEPOINT dbops_piece")
                        self._send(cur, piece)
                    except psycopg.Error as exc:
                        return self._piece_failed(exc, sql, start, piece)
                    rows.append(cur.rowcount)
                    while cur.nextset():
                        rows.append(cur.rowcount)
                if verify is not None:
                    self._verify(verify)
                elapsed = int((time.perf_counter() - clock) * 1000)
                try:
                    for part, params in bookkeeping(elapsed):
                        cur.execute(part, params)
                    cur.execute("COMMIT")
                except psycopg.Error as exc:
                    error = _sql_error(exc)
                    if not isinstance(error, SqlError):
                        raise error from None
                    self.conn.execute("ROLLBACK")
                    return TransactionResult(rows, elapsed, error=error)
        except psycopg.Error as exc:
            raise _sql_error(exc) from None
        finally:
            if not self.conn.broken:
                self.conn.autocommit = saved
        return TransactionResult(rows, elapsed)

    def _piece_failed(self, exc: psycopg.Error, sql: str, start: int, piece: str) -> TransactionResult:
        """Roll back after a failed piece; locate the failure by its position, or by replaying the piece."""
        error = _sql_error(exc)
        if not isinstance(error, SqlError):
            raise error from None
        position = exc.diag.statement_position
        line = None
        if not position and exc.sqlstate not in _NOT_REPLAYED:
            self.conn.execute("ROLLBACK TO SAVEPOINT dbops_piece")
            first_line = sql.count("\n", 0, start) + 1
            found = list(iter_statements(piece, first_line))
            index = self._replay([s.sql for s in found])
            line = found[index].line if index is not None else None
        self.conn.execute("ROLLBACK")
        offset = start + int(position) - 1 if position else None
        return TransactionResult([], 0, error=error, failed_offset=offset, failed_line=line)

    supports_batches = True

    def run_batch(self, items: list[BatchItem]) -> BatchResult:
        """Several migrations in one query and one commit, each behind a savepoint, each script sent as written.

        The server splits the scripts; each one's statement count and rows come back as the results between
        its savepoint's mark and its two bookkeeping rows. When one fails, the batch is rolled back to that
        script's savepoint and the ones before it commit, each with its history and audit rows: the same
        outcome as one transaction per script.
        """
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.rollback()
        mogrify = psycopg.ClientCursor(self.conn).mogrify
        parts, owners, is_script = ["BEGIN"], [-1], [False]
        for index, item in enumerate(items):
            for part, script in (
                (f"SAVEPOINT dbops_{index}", False),
                (SCRIPT_STARTED_MARK, False),
                (item.script, True),
                *((_bound(mogrify, sql, params), False) for sql, params in item.bookkeeping(None)),
            ):
                parts.append(part)
                owners.append(index)
                is_script.append(script)
        parts.append("COMMIT")
        owners.append(-1)
        is_script.append(False)
        # An item with `verify` ends a query after its script: verify runs there, in the batch's transaction.
        cuts = [k + 1 for k, (owner, script) in enumerate(zip(owners, is_script)) if script and items[owner].verify]
        bounds = list(zip([0, *cuts], [*cuts, len(parts)]))
        results: list[tuple[str | None, int]] = []
        saved, self.conn.autocommit = self.conn.autocommit, True
        try:
            with self.conn.cursor() as cur:
                for first, end in bounds:
                    try:
                        self._send(cur, _SEPARATOR.join(parts[first:end]))
                    except psycopg.Error as exc:
                        return self._batch_failed(exc, items, parts, first, end, owners, is_script)
                    results.append((cur.statusmessage, cur.rowcount))
                    while cur.nextset():
                        results.append((cur.statusmessage, cur.rowcount))
                    if end < len(parts):
                        index = owners[end - 1]
                        try:
                            items[index].verify()  # type: ignore[misc]
                        except ConnectError:
                            raise
                        except Exception as exc:
                            self.conn.execute(f"ROLLBACK TO SAVEPOINT dbops_{index};\nCOMMIT")
                            return BatchResult(committed=index, rejected=exc)
        except psycopg.Error as exc:
            raise _sql_error(exc) from None
        finally:
            if not self.conn.broken:
                if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self.conn.rollback()  # interrupted (Ctrl-C, SIGTERM) mid-batch: nothing of it commits
                self.conn.autocommit = saved
        return _batch_counts(results, len(items))

    def _batch_failed(
        self, exc: psycopg.Error, items: list[BatchItem], parts: list[str], first: int, end: int, owners: list[int], is_script: list[bool]
    ) -> BatchResult:
        """After parts[first:end] failed: roll back to the failing script's savepoint, commit the ones before it."""
        error = _sql_error(exc)
        if not isinstance(error, SqlError):
            raise error from None
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            return BatchResult(committed=0)  # COMMIT itself failed: nothing committed, nothing to blame yet
        position = exc.diag.statement_position
        part, offset = _part_at(parts[first:end], position) if position else (None, None)
        part = first + part if part is not None else None
        failed = owners[part] if part is not None and owners[part] >= 0 else self._last_savepoint(len(items))
        self.conn.execute(f"ROLLBACK TO SAVEPOINT dbops_{failed};\nCOMMIT")
        if part is not None and is_script[part]:
            return BatchResult(committed=failed, error=error, failed_offset=offset)
        statement = None if exc.sqlstate in _NOT_REPLAYED else self._replay(items[failed].statements())
        return BatchResult(committed=failed, error=error, failed_statement=statement)

    def _last_savepoint(self, count: int) -> int:
        """In an aborted batch, the highest savepoint that exists: the migration that was running."""
        for index in range(count - 1, 0, -1):
            try:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT dbops_{index}")
                return index
            except psycopg.errors.InvalidSavepointSpecification:
                continue
        return 0

    def _replay(self, statements: list[str]) -> int | None:
        """Which statement fails, found by running them one by one in a transaction that is rolled back."""
        try:
            with self.conn.transaction(force_rollback=True), self.conn.cursor() as cur:
                for index, sql in enumerate(statements):
                    try:
                        self._send(cur, sql)
                    except psycopg.Error:
                        return index
        except psycopg.Error:
            return None
        return None

    def commit(self) -> None:
        try:
            self.conn.commit()
        except psycopg.Error as exc:
            raise _sql_error(exc) from None

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except psycopg.Error as exc:
            raise _sql_error(exc) from None

    def set_autocommit(self, on: bool) -> None:
        if self.conn.autocommit != on:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.rollback()
            try:
                self.conn.autocommit = on
            except psycopg.Error as exc:
                raise _sql_error(exc) from None

    def close(self) -> None:
        self.conn.close()

    def backend_pid(self) -> int:
        return self.conn.info.backend_pid


class PostgresTarget(Target):
    """`postgresql://user[:password]@host[:port]/db[?sslmode=…&lock=table]`; password also from DBOPS_PASSWORD."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            url_for_libpq, own = _take_dbops_params(url)
            params = conninfo_to_dict(url_for_libpq)
        except (psycopg.ProgrammingError, ValueError) as exc:  # ValueError: urlsplit's, e.g. an unclosed [ in the host
            raise ConfigError(f"invalid database URL {redact(url)}: {exc}") from None
        check_params(params, url)
        self.lock_kind = str(own.get("lock") or params.pop("lock", "advisory"))
        if self.lock_kind not in ("advisory", "table"):
            raise ConfigError(f"lock={self.lock_kind} in {redact(url)}: use lock=advisory or lock=table")
        if "password" not in params and os.environ.get("DBOPS_PASSWORD"):
            params["password"] = os.environ["DBOPS_PASSWORD"]
        params.setdefault("application_name", application_name())
        params.setdefault("connect_timeout", "10")
        self._params = params

    def connect(self) -> Session:
        try:
            conn = psycopg.connect(make_conninfo(**self._params), autocommit=False)
        except psycopg.Error as exc:
            message = _scrub(str(exc), self._params)
            rejected = _REJECTED_SETTING.search(message)
            if rejected and "options" in self._params:
                raise ConfigError(
                    f"the server refused a session setting of {self.redacted_url}: {rejected.group(1).strip()}; "
                    f"fix the URL's options= (libpq's `-c name=value`)"
                ) from None
            raise ConnectError(f"cannot connect to {self.redacted_url}: {message}") from None
        return PostgresSession(conn)

    @property
    def redacted_url(self) -> str:
        return redact(self.url)

    @property
    def user(self) -> str:
        return str(self._params.get("user", ""))

    @property
    def database(self) -> str:
        return str(self._params.get("dbname", ""))

    def info(self) -> TargetInfo:
        sslmode = str(self._params.get("sslmode", "prefer"))
        ssl = "off" if sslmode == "disable" else f"on (sslmode={sslmode})" if sslmode != "prefer" else "when offered (sslmode=prefer)"
        if str(self._params.get("host", "")).startswith("/"):
            ssl = "not used (unix socket)"
        return TargetInfo(url=self.redacted_url, driver="psycopg", ssl=ssl)


def check_params(params: dict[str, Any], url: str) -> None:
    """Refuse (exit 2, naming the parameter) the values libpq or psycopg would reject when connecting."""

    def bad(name: str, expected: str) -> ConfigError:
        return ConfigError(f"{name}={params[name]} in {redact(url)}: {expected}; fix the URL's parameter")

    for name, choices in CHOICES.items():
        if name in params and str(params[name]) not in choices:
            raise bad(name, f"{name} is one of {', '.join(choices)}")
    if "connect_timeout" in params:
        try:
            seconds = float(params["connect_timeout"])
        except ValueError:
            seconds = float("nan")
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise bad("connect_timeout", "connect_timeout is a number of seconds")
    for name in INTEGERS:
        if name in params and not _INTEGER.fullmatch(str(params[name])):
            raise bad(name, f"{name} is a whole number")
    ports = str(params.get("port", ""))
    if any(part and not _INTEGER.fullmatch(part) for part in ports.split(",")):
        raise bad("port", "port is a port number (or several, separated by commas)")


def _take_dbops_params(url: str) -> tuple[str, dict[str, str]]:
    """libpq rejects URI parameters it does not know: take dbops's own (`lock=`) out of a URL first."""
    if "://" not in url:
        return url, {}
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in pairs if k in DBOPS_PARAMS}
    if not own:
        return url, {}
    query = urlencode([(k, v) for k, v in pairs if k not in DBOPS_PARAMS], safe="/")
    return urlunsplit(parts._replace(query=query)), own


# The server's FATAL for a bad `options=-c name=value` at startup (no SQLSTATE reaches libpq's client then).
_REJECTED_SETTING = re.compile(
    r"FATAL:\s+([^\n]*(?:invalid value for parameter|unrecognized configuration parameter|outside the valid range for parameter)[^\n]*)"
)


def _scrub(message: str, params: dict[str, Any]) -> str:
    password = params.get("password")
    message = message.strip()
    return message.replace(str(password), "***") if password else message
