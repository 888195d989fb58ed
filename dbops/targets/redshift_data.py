"""Amazon Redshift through the Data API (boto3's `redshift-data` client): IAM-authenticated HTTPS, no network path
to the cluster and no password needed.

A transactional script goes with its history and audit rows in one BatchExecuteStatement (one transaction);
a statement outside a transaction is one ExecuteStatement. Every call is polled with DescribeStatement; rows
come back through GetStatementResult. The working session is a Data API session (SessionId), so the settings
dbops makes (the search path) hold from one call to the next; one that has expired is opened again and the
settings are replayed.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from dbops.errors import ConfigError, ConnectError
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
)
from dbops.targets.literals import bind
from dbops.urls import flag_param, redact, split_url

PARAMS = ("region", "secret_arn", "serverless", "endpoint_url", "lease_seconds", "session_keepalive", "application_name")
# The service's limits (Amazon Redshift Management Guide, "Considerations when calling the Data API", and the
# service model: BatchExecuteStatement's Sqls has at most 40 members).
STATEMENT_BYTES = 100 * 1024
BATCH_STATEMENTS = 40
SESSION_KEEPALIVE_SECONDS = 300
# Calls refused for load; retried with exponential backoff (after botocore's own retries) up to RETRY_SECONDS.
RETRIED = ("ThrottlingException", "ActiveStatementsExceededException", "ActiveSessionsExceededException", "TooManyRequestsException")
RETRY_FIRST, RETRY_MAX, RETRY_SECONDS = 0.2, 5.0, 60.0
POLL_FIRST, POLL_FACTOR, POLL_MAX = 0.005, 1.5, 1.0
TIMEOUT_SQLSTATE = "57014"
_SET_TIMEOUT = re.compile(r"\s*set\s+(?:session\s+)?statement_timeout\s*(?:to|=)\s*'?(\d+)'?\s*;?\s*$", re.I)
_SET = re.compile(r"\s*set\s+(?!local\b|transaction\b)", re.I)
_SESSION_GONE = re.compile(r"session", re.I)

ClientFactory = Callable[["DataApiTarget"], Any]
ROLL_BACK = "select 1 / 0 -- dbops: roll this batch back, only its check results are wanted"


class LimitExceeded(ConfigError):
    """A script the Data API cannot take (a statement over 100 KB, a transaction over 40 statements): exit 2."""


def default_client(target: DataApiTarget) -> Any:
    """A boto3 `redshift-data` client (imported on first use)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="dbops")
    return boto3.client("redshift-data", region_name=target.region, endpoint_url=target.endpoint_url, config=config)


def _error_text(text: str) -> str:
    """The service words a database error as `ERROR: message`; dbops shows the message."""
    text = (text or "").strip()
    return text[len("ERROR:"):].strip() if text.upper().startswith("ERROR:") else text


@dataclass
class Outcome:
    """A finished statement (or batch): its description from DescribeStatement."""

    id: str
    status: str
    description: dict[str, Any]

    @property
    def subs(self) -> list[dict[str, Any]]:
        return list(self.description.get("SubStatements") or [])

    def rows(self) -> list[int]:
        """Rows affected per statement (-1 where the service does not say)."""
        found = self.subs or [self.description]
        return [int(s.get("ResultRows", -1)) if s.get("ResultRows") is not None else -1 for s in found]

    def failed_index(self) -> int | None:
        for index, sub in enumerate(self.subs):
            if sub.get("Status") == "FAILED":
                return index
        return None

    def error(self) -> str:
        failed = self.failed_index()
        text = self.subs[failed].get("Error") if failed is not None else None
        return _error_text(text or self.description.get("Error") or "")

    @property
    def elapsed_ms(self) -> int:
        duration = int(self.description.get("Duration") or -1)
        return max(duration // 1_000_000, 0)


class DataApiSession(Session):
    """The working session: calls in one Data API session; `execute` inside a transaction waits for COMMIT.

    The Data API commits every call: statements sent between BEGIN and COMMIT by the engine are kept here and
    sent as one BatchExecuteStatement at `commit` (or with the next `query`, which needs them to have run).
    `fence`: statements the run lock puts first in every batch; if one fails the batch changed nothing and the
    run has lost its lock.
    """

    def __init__(self, target: DataApiTarget) -> None:
        self.target = target
        self.client = target.client()
        self.session_id: str | None = None
        self.settings: list[str] = []  # SETs to replay in a new session when the old one expired
        self.pending: list[str] = []
        self.autocommit = False
        self.timeout: float | None = None
        self.fence: list[str] = []
        self._checks: list[str] | None = None  # verify's queries, recorded (None: not recording)
        self._answers: dict[str, tuple[list[str], list[tuple]] | SqlError] = {}
        self.calls = 0  # Data API calls made, for the bench
        version, self.user, self.database = self.query("select version(), current_user, current_database()")[0]
        self.dialect = Dialect.REDSHIFT if "redshift" in str(version).lower() else Dialect.POSTGRESQL

    # -- the Data API calls ------------------------------------------------------------------------------------

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One call, retried with backoff while the service throttles or is at its active-statement limit."""
        from botocore.exceptions import BotoCoreError, ClientError

        delay, deadline = RETRY_FIRST, time.monotonic() + RETRY_SECONDS
        while True:
            self.calls += 1
            try:
                return getattr(self.client, operation)(**request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "") or str(exc)
                if code in RETRIED and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                raise self._client_error(operation, code, message) from None
            except BotoCoreError as exc:
                raise ConnectError(
                    f"cannot reach the Data API for {self.target.redacted_url}: {type(exc).__name__}: {exc}. "
                    "Check the AWS credentials, the region and the network path to the service"
                ) from None

    def _client_error(self, operation: str, code: str, message: str) -> Exception:
        if code in RETRIED:
            return ConnectError(f"the Data API kept refusing {operation} for {RETRY_SECONDS:g}s ({code}: {message}); try again later")
        if code == "ValidationException":
            return SqlError(f"the Data API refused the statement: {message}")
        if code in ("ExecuteStatementException", "BatchExecuteStatementException", "DatabaseConnectionException"):
            return ConnectionLost(f"lost the connection to the database: {code}: {message}")
        return ConnectError(
            f"the Data API refused {operation} for {self.target.redacted_url}: {code}: {message}. "
            "Check the AWS credentials and the permissions (redshift-data:*, and redshift:GetClusterCredentials* or "
            "redshift-serverless:GetCredentials, or secretsmanager:GetSecretValue for secret_arn)"
        )

    def _submit(self, sqls: list[str], batch: bool = False) -> str:
        """Send one statement (ExecuteStatement) or a transaction (BatchExecuteStatement); return its id."""
        for sql in sqls:
            size = len(sql.encode())
            if size > STATEMENT_BYTES:
                raise LimitExceeded(
                    f"a statement of {size // 1024} KB is over the Data API's limit of {STATEMENT_BYTES // 1024} KB per "
                    f"statement: {sql[:80]!r}…"
                )
        if len(sqls) > BATCH_STATEMENTS:
            raise LimitExceeded(f"{len(sqls)} statements are over the Data API's limit of {BATCH_STATEMENTS} per BatchExecuteStatement")
        request: dict[str, Any] = {"SessionKeepAliveSeconds": self.target.keepalive}
        reopened = False
        while True:
            if self.session_id:
                request["SessionId"] = self.session_id
            else:
                request.update(self.target.connection())
            try:
                if len(sqls) == 1 and not batch:
                    response = self._call("execute_statement", Sql=sqls[0], **request)
                else:
                    response = self._call("batch_execute_statement", Sqls=sqls, **request)
            except SqlError as exc:
                if self.session_id and not reopened and _SESSION_GONE.search(str(exc)):
                    self._reopen()  # the session expired (or the service closed it): a new one, with our settings
                    request = {"SessionKeepAliveSeconds": self.target.keepalive}
                    reopened = True
                    continue
                raise
            self.session_id = response.get("SessionId") or self.session_id
            return str(response["Id"])

    def _reopen(self) -> None:
        self.session_id = None
        for setting in self.settings:
            self._wait(self._submit([setting]))

    def _wait(self, statement_id: str) -> Outcome:
        """Poll DescribeStatement with backoff until the statement ends; past the statement timeout, cancel it."""
        delay = POLL_FIRST
        deadline = time.monotonic() + self.timeout if self.timeout else None
        cancelled = False
        while True:
            description = self._call("describe_statement", Id=statement_id)
            status = description.get("Status", "")
            if status in ("FINISHED", "FAILED", "ABORTED"):
                outcome = Outcome(statement_id, status, description)
                if status == "ABORTED" or (cancelled and status == "FAILED"):
                    raise SqlError(
                        f"canceling statement due to statement timeout: the statement ran past --statement-timeout "
                        f"({self.timeout:g}s) and dbops cancelled it (CancelStatement)" if cancelled else
                        "the statement was cancelled (ABORTED): someone called CancelStatement on it, or the service "
                        "ended its session",
                        TIMEOUT_SQLSTATE if cancelled else None,
                    )
                return outcome
            if deadline is not None and not cancelled and time.monotonic() >= deadline:
                self._cancel(statement_id)
                cancelled = True
            time.sleep(delay)
            delay = min(delay * POLL_FACTOR, POLL_MAX)

    def _cancel(self, statement_id: str) -> None:
        try:
            self._call("cancel_statement", Id=statement_id)
        except SqlError:
            pass  # it finished before the cancel arrived: the next DescribeStatement says how

    def run(self, sqls: list[str], batch: bool = False) -> Outcome:
        """Run statements (a batch: one transaction) to their end; a failure raises SqlError."""
        statement_id = self._submit(sqls, batch)
        outcome = self._wait(statement_id)
        if outcome.status == "FAILED":
            raise SqlError(outcome.error())
        return outcome

    def records(self, statement_id: str) -> list[tuple]:
        """Every row of a finished statement, page by page."""
        rows: list[tuple] = []
        request: dict[str, Any] = {"Id": statement_id}
        while True:
            page = self._call("get_statement_result", **request)
            columns = page.get("ColumnMetadata") or []
            for record in page.get("Records") or []:
                rows.append(tuple(_value(field, columns[i] if i < len(columns) else {}) for i, field in enumerate(record)))
            token = page.get("NextToken")
            if not token:
                return rows
            request["NextToken"] = token

    # -- the Session interface ---------------------------------------------------------------------------------

    def _statement(self, sql: str, params: Sequence[Any] | None) -> str:
        return bind(sql, params, backslashes=self.dialect == Dialect.REDSHIFT) if params is not None else sql

    def _setting(self, sql: str) -> bool:
        """A SET: statement_timeout becomes the client's cancel deadline; others run now and are replayed."""
        timeout = _SET_TIMEOUT.match(sql)
        if timeout:
            self.timeout = int(timeout[1]) / 1000 or None
            return True
        if _SET.match(sql) and ";" not in sql.strip().rstrip(";"):
            self.run([sql])
            self.settings = [s for s in self.settings if s.split()[:2] != sql.split()[:2]] + [sql]
            return True
        return False

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        statement = self._statement(sql, params)
        if self._setting(statement):
            return 0
        if not self.autocommit:
            self.pending.append(statement)
            return -1
        return self.run([statement]).rows()[0]

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        statement = self._statement(sql, params)
        pending, self.pending = self.pending, []
        if not pending:
            outcome = self.run([statement])
            return self.records(outcome.id) if outcome.description.get("HasResultSet") else []
        outcome = self.run([*self.fence, *pending, statement], batch=True)
        last = outcome.subs[-1]
        return self.records(str(last["Id"])) if last.get("HasResultSet") else []

    def query_columns(self, sql: str) -> tuple[list[str], list[tuple]]:
        if self._checks is not None:  # verify's checks, asked inside a batch that has not been sent yet
            self._checks.append(sql)
            answer = self._answers.get(sql, ([], []))
            if isinstance(answer, SqlError):
                raise answer
            return answer
        pending, self.pending = self.pending, []
        outcome = self.run([*self.fence, *pending, sql], batch=True) if pending else self.run([sql])
        last = outcome.subs[-1] if pending else outcome.description
        if not last.get("HasResultSet"):
            return [], []
        statement_id = str(last.get("Id") or outcome.id)
        page = self._call("get_statement_result", Id=statement_id)
        columns = [str(c.get("label") or c.get("name") or "") for c in page.get("ColumnMetadata") or []]
        return columns, self.records(statement_id)

    def commit(self) -> None:
        pending, self.pending = self.pending, []
        for start in range(0, len(pending), BATCH_STATEMENTS - len(self.fence)):
            self.run([*self.fence, *pending[start : start + BATCH_STATEMENTS - len(self.fence)]], batch=True)

    def rollback(self) -> None:
        self.pending = []

    def set_autocommit(self, on: bool) -> None:
        self.pending = []
        self.autocommit = on

    def close(self) -> None:
        self.pending = []  # the Data API has no call that ends a session: it ends SessionKeepAliveSeconds after its last statement

    def _bookkeeping(self, bookkeeping: Bookkeeping) -> list[str]:
        # On PostgreSQL the rows take their times from the server's clock (the same transaction); Redshift's
        # leader node has no dbops.started setting, so there the time is the client's (0 before the round trip).
        rows = bookkeeping(None if self.dialect == Dialect.POSTGRESQL else 0)
        return [self._statement(sql, params) for sql, params in rows]

    def _refuse(self, statements: int, what: str = "this script") -> None:
        room = BATCH_STATEMENTS - len(self.fence) - 2
        if statements > room:
            raise LimitExceeded(
                f"{what} has {statements} statements; on the Data API a transactional script runs in one "
                f"BatchExecuteStatement, at most {BATCH_STATEMENTS} statements, {BATCH_STATEMENTS - room} of them dbops's "
                f"(run lock and history rows): split it into scripts of at most {room} statements"
            )

    def run_transaction(self, statements: list[str], bookkeeping: Bookkeeping, verify: Verify | None = None) -> TransactionResult:
        """The statements, the history row and the audit row in one BatchExecuteStatement: one transaction."""
        self.pending = []
        if verify is not None:
            return self._run_verified(statements, bookkeeping, verify)
        self._refuse(len(statements))
        sqls = [*self.fence, *statements, *self._bookkeeping(bookkeeping)]
        try:
            outcome = self._wait(self._submit(sqls, batch=True))
        except SqlError as exc:  # cancelled at the statement timeout: the transaction did not commit
            return TransactionResult([], 0, error=exc)
        first = len(self.fence)
        if outcome.status == "FAILED":
            failed = outcome.failed_index()
            if failed is not None and failed < first:
                raise self.lost_fence(outcome.error())
            index = failed - first if failed is not None and first <= failed < first + len(statements) else None
            return TransactionResult([], 0, failed_index=index, error=SqlError(outcome.error()))
        return TransactionResult(outcome.rows()[first : first + len(statements)], outcome.elapsed_ms)

    def _verify(self, verify: Verify, answers: dict[str, tuple[list[str], list[tuple]] | SqlError]) -> list[str]:
        """Call the engine's checks with `answers` for their queries; return the queries they asked."""
        self._checks, self._answers = [], answers
        try:
            verify()
        finally:
            asked, self._checks, self._answers = self._checks or [], None, {}
        return asked

    def _run_verified(self, statements: list[str], bookkeeping: Bookkeeping, verify: Verify) -> TransactionResult:
        """A script with checks: each check becomes a statement of the batch that fails when its query finds a row.

        The checks' queries are learnt by calling `verify` with no rows; when one fails in the batch, the script
        and the queries run again in a batch that is rolled back, and `verify` gets their real rows (it raises).
        """
        queries = self._verify(verify, {})
        guards = [f"select 1 / (case when exists ({query}) then 0 else 1 end)" for query in queries]
        self._refuse(len(statements) + len(guards))
        sqls = [*self.fence, *statements, *guards, *self._bookkeeping(bookkeeping)]
        first = len(self.fence)
        try:
            outcome = self._wait(self._submit(sqls, batch=True))
        except SqlError as exc:
            return TransactionResult([], 0, error=exc)
        if outcome.status == "FINISHED":
            return TransactionResult(outcome.rows()[first : first + len(statements)], outcome.elapsed_ms)
        failed = outcome.failed_index()
        if failed is not None and failed < first:
            raise self.lost_fence(outcome.error())
        if failed is None or not first + len(statements) <= failed < first + len(statements) + len(guards):
            index = failed - first if failed is not None and first <= failed < first + len(statements) else None
            return TransactionResult([], 0, failed_index=index, error=SqlError(outcome.error()))
        replay = self._wait(self._submit([*self.fence, *statements, *queries, ROLL_BACK], batch=True))
        answers: dict[str, tuple[list[str], list[tuple]] | SqlError] = {}
        for query, sub in zip(queries, replay.subs[first + len(statements) :]):
            if sub.get("Status") == "FINISHED":
                page = self._call("get_statement_result", Id=str(sub["Id"]))
                columns = [str(c.get("label") or c.get("name") or "") for c in page.get("ColumnMetadata") or []]
                answers[query] = (columns, self.records(str(sub["Id"])))
            elif sub.get("Status") == "FAILED":
                answers[query] = SqlError(_error_text(sub.get("Error") or ""))
        self._verify(verify, answers)  # raises the checks' failure, with their rows
        return TransactionResult([], 0, error=SqlError(outcome.error()))

    def lost_fence(self, error: str) -> ConnectionLost:
        return ConnectionLost(
            f"lost the run lock: its lease was taken over by another migrator ({error}); this batch was not applied"
        )

    supports_batches = True

    def run_batch(self, items: list[BatchItem]) -> BatchResult:
        """Consecutive scripts packed into BatchExecuteStatements of at most 40 statements, one after the other.

        A batch is one transaction, so its scripts commit together or not at all; when one fails, the scripts
        of that batch are left unapplied (the engine then applies them one at a time, naming the failing one).
        """
        self.pending = []
        if any(item.verify is not None for item in items):
            return super().run_batch(items)  # scripts with checks: one transaction each (_run_verified)
        committed, rows, counts = 0, [], []
        mark = [SCRIPT_STARTED_MARK] if self.dialect == Dialect.POSTGRESQL else []
        index = 0
        while index < len(items):
            sqls, owners = list(self.fence), [-1] * len(self.fence)
            chunk = 0
            while index + chunk < len(items):
                item = items[index + chunk]
                statements = item.statements()
                parts = [*mark, *statements, *self._bookkeeping(item.bookkeeping)]
                if len(sqls) + len(parts) > BATCH_STATEMENTS:
                    break
                sqls += parts
                owners += [-2] * len(mark) + [chunk] * len(statements) + [-2] * (len(parts) - len(mark) - len(statements))
                counts.append(len(statements))
                chunk += 1
            if chunk == 0:  # one script too big for a batch with others: it runs alone (run_transaction refuses it)
                break
            try:
                outcome = self._wait(self._submit(sqls, batch=True))
            except SqlError as exc:
                return BatchResult(committed=committed, rows=rows or None, error=exc, statement_counts=counts[:committed] or None)
            if outcome.status == "FAILED":
                failed = outcome.failed_index()
                if failed is not None and failed < len(self.fence):
                    raise self.lost_fence(outcome.error())
                del counts[len(counts) - chunk :]
                break
            per_row = outcome.rows()
            for n in range(chunk):
                rows.append(sum(max(r, 0) for r, owner in zip(per_row, owners) if owner == n))
            committed += chunk
            index += chunk
        return BatchResult(committed=committed, rows=rows or None, statement_counts=counts[:committed] or None)

    def check_scripts(self, migrations: Sequence[Any]) -> None:
        """Refuse, before anything runs, a script over the service's limits, naming the file, the line and the limit."""
        for migration in migrations:
            for statement in migration.statements:
                size = len(statement.sql.encode())
                if size > STATEMENT_BYTES:
                    raise LimitExceeded(
                        f"{migration.path}:{statement.line}: this statement is {size // 1024} KB; the Data API takes "
                        f"statements of at most {STATEMENT_BYTES // 1024} KB. Split it (several INSERTs, say), or "
                        "migrate this script through the redshift:// driver"
                    )
            if migration.in_transaction_on(self.dialect):
                self._refuse(len(migration.statements), f"{migration.path}")
                self._refuse(len(migration.statements) + len(getattr(migration, "checks", None) or []), f"{migration.path} (with its checks)")

    def backend_pid(self) -> int:
        return int(self.query("select pg_backend_pid()")[0][0])


def _value(field: dict[str, Any], column: dict[str, Any]) -> Any:
    """A GetStatementResult field as Python: typed by the field, and strings by the column's type."""
    if field.get("isNull"):
        return None
    for key in ("longValue", "booleanValue", "doubleValue", "blobValue"):
        if key in field:
            return field[key]
    text = field.get("stringValue")
    kind = str(column.get("typeName", "")).lower()
    if text is None:
        return None
    if kind in ("timestamp", "timestamptz", "timestamp without time zone", "timestamp with time zone"):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return text
    if kind == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            return text
    if kind == "numeric":
        return Decimal(text)
    return text


def _number(params: dict[str, str], name: str, default: float, url: str) -> float:
    try:
        value = float(params.get(name) or default)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"{name}={params[name]} in {redact(url)} is not a positive number of seconds")
    return value


class DataApiTarget(Target):
    """`redshift-data://[db_user@]CLUSTER/DATABASE[?region=…&secret_arn=…]`, or
    `redshift-data://WORKGROUP/DATABASE?serverless=true`.

    Auth, as the Data API takes it: `secret_arn` (a secret holding username and password); else on a cluster
    `DbUser` (temporary credentials for that database user) when the URL names a user, or the caller's IAM
    identity (`IAM:<name>`) when it does not; a Serverless workgroup always uses the IAM identity.
    """

    lock_kind = "lease"

    def __init__(self, url: str, client_factory: ClientFactory = default_client) -> None:
        self.url = url
        self._client_factory = client_factory
        parts, port, params = split_url(url, "redshift-data", PARAMS)
        if parts.password is not None or port is not None:
            raise ConfigError(
                f"redshift-data URL {redact(url)}: the Data API takes no password and no port; "
                "use redshift-data://[db_user@]cluster/database, secret_arn= or IAM"
            )
        self.identifier = parts.hostname or ""
        self._database = unquote(parts.path.lstrip("/"))
        if not self.identifier or not self._database:
            raise ConfigError(
                f"redshift-data URL {redact(url)} needs a cluster (or workgroup) and a database: "
                "redshift-data://my-cluster/dev or redshift-data://my-workgroup/dev?serverless=true"
            )
        self.serverless = flag_param(params, "serverless", url)
        self.db_user = unquote(parts.username or "") or None
        self.secret_arn = params.get("secret_arn") or None
        if self.serverless and self.db_user:
            raise ConfigError(
                f"redshift-data URL {redact(url)}: a Serverless workgroup takes no database user; the Data API derives it "
                "from the caller's IAM identity (or use secret_arn=)"
            )
        if self.secret_arn and self.db_user:
            raise ConfigError(f"redshift-data URL {redact(url)}: use either a database user or secret_arn=, not both")
        self.region = params.get("region") or None
        self.endpoint_url = params.get("endpoint_url") or None
        self.lease_seconds = _number(params, "lease_seconds", 120, url)
        self.keepalive = int(_number(params, "session_keepalive", SESSION_KEEPALIVE_SECONDS, url))
        if self.keepalive > 86400:
            raise ConfigError(f"session_keepalive={self.keepalive} in {redact(url)}: the Data API keeps a session 24 hours at most (86400)")

    def client(self) -> Any:
        return self._client_factory(self)

    def connection(self) -> dict[str, Any]:
        """The request parameters that name the database and the credentials, as the Data API takes them."""
        request: dict[str, Any] = {"Database": self._database}
        request["WorkgroupName" if self.serverless else "ClusterIdentifier"] = self.identifier
        if self.secret_arn:
            request["SecretArn"] = self.secret_arn
        elif self.db_user:
            request["DbUser"] = self.db_user
        return request

    def connect(self) -> DataApiSession:
        return DataApiSession(self)

    @property
    def redacted_url(self) -> str:
        return redact(self.url)

    @property
    def user(self) -> str:
        return self.db_user or ""

    @property
    def database(self) -> str:
        return self._database

    def info(self) -> TargetInfo:
        where = f"workgroup {self.identifier}" if self.serverless else f"cluster {self.identifier}"
        ssl = "HTTPS (the Data API)" if not (self.endpoint_url or "").startswith("http://") else f"off (endpoint_url={self.endpoint_url})"
        return TargetInfo(url=self.redacted_url, driver=f"redshift-data (Data API, {where})", ssl=ssl)
