"""A local Redshift Data API for the suite: an HTTP server on 127.0.0.1 speaking the service's JSON protocol.

boto3 reaches it through `endpoint_url`. Requests are validated against botocore's model of the service (the
shapes' types, required members, lengths, patterns, and the 40-statement batch), then checked as the service
documents (a cluster or a workgroup, a database, the credentials' combinations, 100 KB per statement).
Statements run asynchronously on the test PostgreSQL server with psycopg, one worker thread each, through the
statuses the service reports: SUBMITTED, PICKED, STARTED, then FINISHED, FAILED or ABORTED.

psycopg rather than the Redshift rig (pgbouncer + redshift_connector): the rig exists because
redshift_connector cannot log in to PostgreSQL directly; this endpoint is the service's side, which talks to
the database itself, so pgbouncer would be one more hop that changes nothing the target sees.

A statement runs as the service runs it: alone, in the extended protocol (so one statement per call, as
the service's "must be a single SQL statement"), and committed when it ends; a batch in one transaction.
A session (SessionKeepAliveSeconds) keeps its database connection, its settings and temporary tables until
it has been idle that long; one session runs one statement at a time.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
import psycopg
from botocore.validate import ParamValidator

from tests.pg import PgServer

STATEMENT_BYTES = 100 * 1024
MODEL = botocore.session.get_session().get_service_model("redshift-data")
ACTIVE = ("SUBMITTED", "PICKED", "STARTED")


class ServiceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass
class Sub:
    """One SQL statement of a call (a batch has several)."""

    id: str
    sql: str
    status: str = "SUBMITTED"
    error: str | None = None
    rows: int = -1
    columns: list[dict[str, Any]] | None = None
    records: list[list[dict[str, Any]]] | None = None
    started: float = 0.0
    ended: float = 0.0
    created: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id, "Status": self.status, "QueryString": self.sql, "CreatedAt": self.created,
            "UpdatedAt": self.ended or self.started or self.created, "HasResultSet": self.columns is not None,
            "Duration": int((self.ended - self.started) * 1e9) if self.ended and self.started else -1,
            "ResultRows": self.rows, "ResultSize": len(json.dumps(self.records)) if self.records is not None else 0,
        }
        if self.error is not None:
            out["Error"] = self.error
        return out


@dataclass
class Statement:
    id: str
    subs: list[Sub]
    batch: bool
    request: dict[str, Any]
    session: Session | None
    status: str = "SUBMITTED"
    error: str | None = None
    pid: int = -1
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    started: float = 0.0
    ended: float = 0.0
    cancel: bool = False
    conn: psycopg.Connection | None = None


@dataclass
class Session:
    id: str
    database: str
    keepalive: int
    conn: psycopg.Connection | None = None
    busy: bool = False
    idle_since: float = field(default_factory=time.monotonic)
    closed: bool = False
    identity: dict[str, Any] = field(default_factory=dict)


def _check_bounds(request: dict[str, Any], shape: Any) -> None:
    """The model's maxima and patterns, which botocore's client-side validator leaves to the service."""
    for name, member in shape.members.items():
        if name not in request:
            continue
        value, meta = request[name], member.metadata
        size = value if isinstance(value, int) and not isinstance(value, bool) else len(value) if isinstance(value, (str, list)) else None
        if "max" in meta and size is not None and size > meta["max"]:
            measure = "value" if isinstance(value, int) else "length"
            raise ServiceError(
                "ValidationException",
                f"1 validation error detected: Value at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                f"Member must have {measure} less than or equal to {meta['max']}",
            )
        if "pattern" in meta and isinstance(value, str) and not re.search(meta["pattern"], value):
            raise ServiceError(
                "ValidationException",
                f"1 validation error detected: Value '{value}' at '{name[0].lower() + name[1:]}' failed to satisfy "
                f"constraint: Member must satisfy regular expression pattern: {meta['pattern']}",
            )


def _error_text(exc: psycopg.Error) -> str:
    """The service's wording of a database error: `ERROR: message`, the detail on a line of its own."""
    diag = exc.diag
    text = f"ERROR: {diag.message_primary or str(exc).strip()}"
    if diag.message_detail:
        text += f"\n  Detail: {diag.message_detail}"
    return text


def _field(value: Any) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes | memoryview):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, date):
        return {"stringValue": value.isoformat()}
    return {"stringValue": str(value)}


class DataApiEndpoint:
    """The service for the databases of `server`: any ClusterIdentifier or WorkgroupName reaches them."""

    def __init__(self, server: PgServer, page_rows: int = 1000, max_active: int = 500) -> None:
        self.server = server
        self.page_rows = page_rows
        self.max_active = max_active
        self.statements: dict[str, Statement] = {}
        self.sessions: dict[str, Session] = {}
        self.secrets: dict[str, str] = {}  # secret ARN -> the database user it holds
        self.calls: list[str] = []
        self.throttle_next = 0  # the next N calls answer ThrottlingException
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                status, payload = endpoint.handle(target, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="dataapi", daemon=True)
        self.thread.start()
        self.reaper = threading.Thread(target=self._reap, name="dataapi-sessions", daemon=True)
        self.reaper.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, database: str, cluster: str = "rig-cluster", user: str = "", **params: str) -> str:
        """A `redshift-data://` URL for `database` on this endpoint."""
        query = "&".join(f"{k}={v}" for k, v in {"region": "us-east-1", "endpoint_url": self.endpoint_url, **params}.items())
        return f"redshift-data://{user + '@' if user else ''}{cluster}/{database}?{query}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            sessions = list(self.sessions.values())
        for session in sessions:
            self._close(session)

    # -- the protocol ------------------------------------------------------------------------------------------

    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = MODEL.metadata["targetPrefix"] + "."
        try:
            if not target.startswith(prefix) or target[len(prefix):] not in MODEL.operation_names:
                raise ServiceError("UnknownOperationException", f"unknown operation {target}")
            operation = target[len(prefix):]
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                raise ServiceError("SerializationException", "the request body is not JSON") from None
            shape = MODEL.operation_model(operation).input_shape
            report = ParamValidator().validate(request, shape)
            if report.has_errors():
                raise ServiceError("ValidationException", report.generate_report())
            _check_bounds(request, shape)
            with self.lock:
                self.calls.append(operation)
                if self.throttle_next > 0:
                    self.throttle_next -= 1
                    raise ServiceError("ThrottlingException", "Rate exceeded")
            return 200, getattr(self, "op_" + operation)(request)
        except ServiceError as exc:
            return 400, {"__type": exc.code, "message": str(exc)}

    def _identity(self, request: dict[str, Any]) -> dict[str, Any]:
        """Who the request runs as, checked as the service's documentation describes the combinations."""
        cluster, workgroup = request.get("ClusterIdentifier"), request.get("WorkgroupName")
        if bool(cluster) == bool(workgroup):
            raise ServiceError("ValidationException", "Either ClusterIdentifier or WorkgroupName must be specified, not both.")
        if not request.get("Database"):
            raise ServiceError("ValidationException", "Database must be specified.")
        secret, user = request.get("SecretArn"), request.get("DbUser")
        if secret and user:
            raise ServiceError("ValidationException", "Specify either SecretArn or DbUser, not both.")
        if workgroup and user:
            raise ServiceError("ValidationException", "DbUser is not supported for serverless workgroups.")
        if secret:
            if secret not in self.secrets:
                raise ServiceError("ValidationException", f"Secret {secret} not found or not accessible.")
            db_user = self.secrets[secret]
        else:
            db_user = user or "IAM:postgres"
        identity = {"Database": request["Database"], "DbUser": db_user}
        identity.update({"ClusterIdentifier": cluster} if cluster else {"WorkgroupName": workgroup})
        if secret:
            identity["SecretArn"] = secret
        return identity

    def _session_for(self, request: dict[str, Any]) -> tuple[Session | None, dict[str, Any]]:
        session_id = request.get("SessionId")
        if session_id:
            given = [k for k in ("ClusterIdentifier", "WorkgroupName", "Database", "DbUser", "SecretArn") if request.get(k)]
            if given:
                raise ServiceError("ValidationException", f"{', '.join(given)} cannot be specified with SessionId.")
            with self.lock:
                session = self.sessions.get(session_id)
                if session is None or session.closed:
                    raise ServiceError("ValidationException", f"Session {session_id} is not available: it is closed or expired.")
                if session.busy:
                    raise ServiceError("ValidationException", f"Session {session_id} is busy running another statement.")
                session.busy = True
                if request.get("SessionKeepAliveSeconds") is not None:
                    session.keepalive = int(request["SessionKeepAliveSeconds"])
            return session, session.identity
        identity = self._identity(request)
        keepalive = request.get("SessionKeepAliveSeconds")
        if not keepalive:
            return None, identity
        session = Session(str(uuid.uuid4()), identity["Database"], int(keepalive), busy=True, identity=identity)
        with self.lock:
            self.sessions[session.id] = session
        return session, identity

    def _start(self, request: dict[str, Any], sqls: list[str], batch: bool) -> dict[str, Any]:
        for sql in sqls:
            if len(sql.encode()) > STATEMENT_BYTES:
                raise ServiceError("ValidationException", "Query size exceeds the maximum allowed size of 100 KB.")
            if not sql.strip():
                raise ServiceError("ValidationException", "Sql must not be empty.")
        with self.lock:
            active = sum(1 for s in self.statements.values() if s.status in ACTIVE)
        if active >= self.max_active:
            raise ServiceError("ActiveStatementsExceededException", f"Active statements exceeded the allowed quota ({self.max_active}).")
        session, identity = self._session_for(request)
        statement_id = str(uuid.uuid4())
        subs = [Sub(f"{statement_id}:{n}" if batch else statement_id, sql) for n, sql in enumerate(sqls, 1)]
        statement = Statement(statement_id, subs, batch, identity, session)
        with self.lock:
            self.statements[statement_id] = statement
        threading.Thread(target=self._run, args=(statement,), name=f"dataapi-{statement_id[:8]}", daemon=True).start()
        out = {"Id": statement_id, "CreatedAt": statement.created, **identity}
        if session is not None:
            out["SessionId"] = session.id
        return out

    def op_ExecuteStatement(self, request: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        if request.get("Parameters"):
            raise ServiceError("ValidationException", "Parameters are not supported by this endpoint; dbops sends none.")
        return self._start(request, [request["Sql"]], batch=False)

    def op_BatchExecuteStatement(self, request: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return self._start(request, list(request["Sqls"]), batch=True)

    def _statement(self, statement_id: str) -> tuple[Statement, Sub | None]:
        base, _, number = statement_id.partition(":")
        with self.lock:
            statement = self.statements.get(base)
        if statement is None:
            raise ServiceError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        if not number:
            return statement, None
        if not statement.batch or not number.isdigit() or not 1 <= int(number) <= len(statement.subs):
            raise ServiceError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        return statement, statement.subs[int(number) - 1]

    def op_DescribeStatement(self, request: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        statement, sub = self._statement(request["Id"])
        if sub is not None:
            return {**sub.describe(), "Id": sub.id, "RedshiftPid": statement.pid, **statement.request}
        out: dict[str, Any] = {
            "Id": statement.id, "Status": statement.status, "CreatedAt": statement.created, "UpdatedAt": statement.updated,
            "Duration": int((statement.ended - statement.started) * 1e9) if statement.ended and statement.started else -1,
            "RedshiftPid": statement.pid, **statement.request,
        }
        if statement.session is not None:
            out["SessionId"] = statement.session.id
        if statement.error is not None:
            out["Error"] = statement.error
        if statement.batch:
            out["SubStatements"] = [s.describe() for s in statement.subs]
            out["HasResultSet"] = any(s.columns is not None for s in statement.subs)
            out["ResultRows"] = sum(max(s.rows, 0) for s in statement.subs) if statement.status == "FINISHED" else -1
        else:
            one = statement.subs[0].describe()
            out.update({k: one[k] for k in ("QueryString", "HasResultSet", "ResultRows", "ResultSize")})
        return out

    def op_GetStatementResult(self, request: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        statement, sub = self._statement(request["Id"])
        if sub is None:
            if statement.batch:
                raise ServiceError("ValidationException", "Use the Id of a sub-statement (Id:N) to get the result of a batch statement.")
            sub = statement.subs[0]
        if sub.status != "FINISHED":
            raise ServiceError("ResourceNotFoundException", f"Query {sub.id} has not finished: its status is {sub.status}.")
        if sub.records is None:
            raise ServiceError("ResourceNotFoundException", "Query does not have result. Please check query status with DescribeStatement.")
        start = int(request.get("NextToken") or 0) if str(request.get("NextToken") or "0").isdigit() else None
        if start is None:
            raise ServiceError("ValidationException", "NextToken is not valid.")
        page = sub.records[start : start + self.page_rows]
        out: dict[str, Any] = {"Records": page, "ColumnMetadata": sub.columns, "TotalNumRows": len(sub.records)}
        if start + self.page_rows < len(sub.records):
            out["NextToken"] = str(start + self.page_rows)
        return out

    def op_CancelStatement(self, request: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        statement, _ = self._statement(request["Id"])
        with self.lock:
            if statement.status not in ACTIVE:
                raise ServiceError("ValidationException", f"Could not cancel a query that is already in {statement.status} state with ID: {statement.id}")
            statement.cancel = True
            conn = statement.conn
        if conn is not None:
            try:
                conn.cancel_safe()
            except psycopg.Error:
                pass
        return {"Status": True}

    # -- running statements ------------------------------------------------------------------------------------

    def _connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(
            host=self.server.socket_dir, user="postgres", dbname=database, autocommit=True, application_name="redshift-data"
        )

    def _set(self, statement: Statement, status: str, error: str | None = None) -> None:
        with self.lock:
            statement.status = status
            statement.updated = time.time()
            if error is not None:
                statement.error = error

    def _run(self, statement: Statement) -> None:
        session = statement.session
        self._set(statement, "PICKED")
        conn: psycopg.Connection | None = None
        try:
            try:
                conn = session.conn if session is not None and session.conn is not None else self._connect(statement.request["Database"])
            except psycopg.Error as exc:
                for sub in statement.subs:
                    sub.status, sub.error = "FAILED", f"FATAL: {exc}"
                self._set(statement, "FAILED", f"FATAL: {exc}")
                return
            if session is not None:
                session.conn = conn
            with self.lock:
                statement.conn = conn
                statement.pid = conn.info.backend_pid
                if statement.cancel:
                    statement.status = "ABORTED"
                    for sub in statement.subs:
                        sub.status = "ABORTED"
                    return
                statement.status = "STARTED"
                statement.started = time.time()
            self._execute(statement, conn)
        finally:
            statement.ended = time.time()
            with self.lock:
                statement.conn = None
            if session is None:
                if conn is not None:
                    conn.close()
            else:
                session.busy = False
                session.idle_since = time.monotonic()
                if conn is not None and conn.broken:
                    session.conn = None

    def _execute(self, statement: Statement, conn: psycopg.Connection) -> None:
        cur = psycopg.RawCursor(conn)
        failed: Sub | None = None
        try:
            if statement.batch:
                cur.execute("BEGIN")
            for sub in statement.subs:
                sub.status, sub.started = "STARTED", time.time()
                try:
                    cur.execute(sub.sql, (), binary=True)  # the extended protocol: one statement, as the service runs it
                    if cur.description is not None:
                        sub.columns = [
                            {"name": c.name, "label": c.name, "typeName": _type_name(conn, c.type_code), "nullable": 1}
                            for c in cur.description
                        ]
                        sub.records = [[_field(v) for v in row] for row in cur.fetchall()]
                        sub.rows = len(sub.records)
                    else:
                        sub.rows = max(cur.rowcount, 0)
                    sub.status, sub.ended = "FINISHED", time.time()
                except psycopg.Error as exc:
                    sub.ended = time.time()
                    cancelled = isinstance(exc, psycopg.errors.QueryCanceled) and statement.cancel
                    sub.status = "ABORTED" if cancelled else "FAILED"
                    sub.error = None if cancelled else _error_text(exc)
                    failed = sub
                    break
            if failed is not None:
                for sub in statement.subs[statement.subs.index(failed) + 1 :]:
                    sub.status = "ABORTED"
                if statement.batch and not conn.broken:
                    cur.execute("ROLLBACK")
                self._set(statement, failed.status, failed.error)
                return
            if statement.batch:
                cur.execute("COMMIT")
            self._set(statement, "FINISHED")
        except psycopg.Error as exc:  # COMMIT failed (a deferred constraint), or the connection broke
            if statement.batch and not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            self._set(statement, "FAILED", _error_text(exc))

    def _reap(self) -> None:
        """Close sessions idle for longer than their SessionKeepAliveSeconds."""
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self.lock:
                expired = [s for s in self.sessions.values() if not s.busy and not s.closed and now - s.idle_since > s.keepalive]
            for session in expired:
                self._close(session)

    def _close(self, session: Session) -> None:
        session.closed = True
        if session.conn is not None:
            try:
                session.conn.close()
            except psycopg.Error:
                pass
            session.conn = None

    def expire_sessions(self) -> None:
        """End every session now, as the service does after SessionKeepAliveSeconds."""
        with self.lock:
            sessions = list(self.sessions.values())
        for session in sessions:
            self._close(session)


_TYPE_NAMES: dict[int, str] = {}


def _type_name(conn: psycopg.Connection, oid: int) -> str:
    """The column type's name as the service reports it (typeName: int4, varchar, timestamp, …)."""
    if oid not in _TYPE_NAMES:
        known = conn.adapters.types.get(oid)
        _TYPE_NAMES[oid] = known.name if known is not None else str(oid)
    return _TYPE_NAMES[oid]
