"""The Data API target against botocore's Stubber: the service's failures, as the real service answers them."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from dbops.errors import ConnectError
from dbops.targets import redshift_data
from dbops.targets.base import SqlError
from dbops.targets.redshift_data import DataApiTarget, LimitExceeded

URL = "redshift-data://dbops@prod-cluster/dev?region=eu-west-1"
SESSION = "1b2c3d4e-0000-4000-8000-00000000abcd"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(redshift_data, "RETRY_FIRST", 0.001)
    monkeypatch.setattr(redshift_data, "POLL_FIRST", 0.001)
    monkeypatch.setattr(redshift_data, "POLL_MAX", 0.002)


@pytest.fixture
def stub():
    client = boto3.client("redshift-data", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def started(stubber: Stubber, operation: str = "execute_statement", expected: dict | None = None) -> str:
    statement = str(uuid.uuid4())
    stubber.add_response(operation, {"Id": statement, "SessionId": SESSION, "CreatedAt": NOW}, expected)
    return statement


def described(stubber: Stubber, statement: str, status: str, **fields) -> None:
    stubber.add_response("describe_statement", {"Id": statement, "Status": status, **fields}, {"Id": statement})


def rows(stubber: Stubber, statement: str, records: list[list[dict]], columns: list[str]) -> None:
    stubber.add_response(
        "get_statement_result",
        {"Records": records, "ColumnMetadata": [{"name": c, "typeName": "varchar"} for c in columns], "TotalNumRows": len(records)},
        {"Id": statement},
    )


def connected(client, stubber: Stubber, first: dict | None = None):
    """A session: its first statement reads the server's version, user and database."""
    statement = started(stubber, expected=first)
    described(stubber, statement, "FINISHED", HasResultSet=True, ResultRows=1)
    rows(stubber, statement, [[{"stringValue": "PostgreSQL 8.0.2 Redshift 1.0.77467"}, {"stringValue": "dbops"}, {"stringValue": "dev"}]], ["v", "u", "d"])
    return DataApiTarget(URL, client_factory=lambda target: client).connect()


def test_the_first_call_names_the_cluster_database_and_user_and_opens_a_session(stub) -> None:
    client, stubber = stub
    first = {"Sql": ANY, "ClusterIdentifier": "prod-cluster", "Database": "dev", "DbUser": "dbops", "SessionKeepAliveSeconds": 300}
    session = connected(client, stubber, first)
    assert session.dialect == "redshift" and session.user == "dbops" and session.session_id == SESSION
    statement = started(stubber, expected={"Sql": "vacuum sales", "SessionId": SESSION, "SessionKeepAliveSeconds": 300})
    described(stubber, statement, "FINISHED", ResultRows=0)
    session.set_autocommit(True)
    assert session.execute("vacuum sales") == 0


def test_throttling_is_retried_with_backoff(stub) -> None:
    client, stubber = stub
    stubber.add_client_error("execute_statement", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_client_error("execute_statement", "ActiveStatementsExceededException", "Active statements exceeded the allowed quota (500).", 400)
    session = connected(client, stubber)
    assert session.calls == 5  # two refused, then the statement, its description and its rows


def test_throttling_that_does_not_end_is_a_connect_error(stub, monkeypatch) -> None:
    client, stubber = stub
    monkeypatch.setattr(redshift_data, "RETRY_SECONDS", 0.05)
    for _ in range(200):
        stubber.add_client_error("execute_statement", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(ConnectError, match="kept refusing execute_statement.*ThrottlingException"):
        DataApiTarget(URL, client_factory=lambda target: client).connect()
    stubber._queue.clear()


def test_a_failed_statement_is_the_server_error_without_the_services_prefix(stub) -> None:
    client, stubber = stub
    session = connected(client, stubber)
    statement = started(stubber)
    described(stubber, statement, "FAILED", Error='ERROR: relation "missing" does not exist')
    with pytest.raises(SqlError, match='^relation "missing" does not exist$'):
        session.query("select * from missing")


def test_a_failed_batch_names_the_failing_statement(stub) -> None:
    client, stubber = stub
    session = connected(client, stubber)
    statement = started(stubber, "batch_execute_statement")
    subs = [
        {"Id": f"{statement}:1", "Status": "FINISHED"},
        {"Id": f"{statement}:2", "Status": "FAILED", "Error": "ERROR: column \"nope\" does not exist"},
        {"Id": f"{statement}:3", "Status": "ABORTED"},
        {"Id": f"{statement}:4", "Status": "ABORTED"},
    ]
    described(stubber, statement, "FAILED", Error=subs[1]["Error"], SubStatements=subs)
    outcome = session.run_transaction(["create table a (id int)", "select nope from a"], lambda ms: [("insert 1", None), ("insert 2", None)])
    assert outcome.failed_index == 1 and str(outcome.error) == 'column "nope" does not exist'


def test_an_aborted_statement_is_reported_as_cancelled(stub) -> None:
    client, stubber = stub
    session = connected(client, stubber)
    statement = started(stubber)
    described(stubber, statement, "ABORTED")
    with pytest.raises(SqlError, match="cancelled \\(ABORTED\\)"):
        session.query("select 1")


def test_an_expired_session_is_opened_again_with_its_settings(stub) -> None:
    client, stubber = stub
    session = connected(client, stubber)
    statement = started(stubber, expected={"Sql": 'SET search_path TO "app", public', "SessionId": SESSION, "SessionKeepAliveSeconds": 300})
    described(stubber, statement, "FINISHED")
    session.execute('SET search_path TO "app", public')
    stubber.add_client_error("execute_statement", "ValidationException", f"Session {SESSION} is not available: it is closed or expired.", 400)
    again = {"Sql": 'SET search_path TO "app", public', "ClusterIdentifier": "prod-cluster", "Database": "dev", "DbUser": "dbops", "SessionKeepAliveSeconds": 300}
    replay = started(stubber, expected=again)
    described(stubber, replay, "FINISHED")
    statement = started(stubber, expected={"Sql": "select 1", "SessionId": SESSION, "SessionKeepAliveSeconds": 300})
    described(stubber, statement, "FINISHED", HasResultSet=True, ResultRows=1)
    rows(stubber, statement, [[{"longValue": 1}]], ["x"])
    assert session.query("select 1") == [(1,)]


def test_limits_are_refused_before_anything_is_sent(stub) -> None:
    client, stubber = stub
    session = connected(client, stubber)
    with pytest.raises(LimitExceeded, match="limit of 100 KB per statement"):
        session.run_transaction(["select '" + "x" * 103_000 + "'"], lambda ms: [])
    with pytest.raises(LimitExceeded, match="at most 40 statements"):
        session.run_transaction(["select 1"] * 39, lambda ms: [("select 2", None), ("select 3", None)])


def test_access_denied_is_a_connect_error_naming_the_permissions(stub) -> None:
    client, stubber = stub
    stubber.add_client_error("execute_statement", "AccessDeniedException", "User is not authorized to perform redshift-data:ExecuteStatement", 400)
    with pytest.raises(ConnectError, match="AccessDeniedException.*redshift-data"):
        DataApiTarget(URL, client_factory=lambda target: client).connect()
