"""The local Data API endpoint answers as the service does: statuses, batches, results, errors, validation."""
from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError

TERMINAL = ("FINISHED", "FAILED", "ABORTED")


@pytest.fixture
def client(dataapi, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("redshift-data", region_name="us-east-1", endpoint_url=dataapi.endpoint_url)


@pytest.fixture
def database(pg_server) -> str:
    return pg_server.create_database()


def wait(client, statement_id: str) -> dict:
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = client.describe_statement(Id=statement_id)
        seen.append(description["Status"])
        if description["Status"] in TERMINAL:
            description["seen"] = seen
            return description
        time.sleep(0.005)
    raise AssertionError(f"{statement_id} did not end: {seen}")


def test_a_statement_goes_through_the_service_statuses_and_returns_typed_pages(client, database, dataapi, monkeypatch) -> None:
    monkeypatch.setattr(dataapi, "page_rows", 3)
    sql = "select g as n, 'row ' || g as name, g * 1.5 as amount, g % 2 = 0 as even, null::int as nothing from generate_series(1, 7) g"
    started = client.execute_statement(ClusterIdentifier="c1", Database=database, DbUser="postgres", Sql=sql)
    description = wait(client, started["Id"])
    assert description["Status"] == "FINISHED" and description["HasResultSet"] and description["ResultRows"] == 7
    assert set(description["seen"]) <= {"SUBMITTED", "PICKED", "STARTED", "FINISHED"}
    assert description["QueryString"] == sql and description["Duration"] > 0 and description["DbUser"] == "postgres"
    pages, token = [], None
    while True:
        page = client.get_statement_result(Id=started["Id"], **({"NextToken": token} if token else {}))
        pages.append(page["Records"])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    first = pages[0][0]
    assert first[0] == {"longValue": 1} and first[1] == {"stringValue": "row 1"} and first[3] == {"booleanValue": False}
    assert first[2] == {"stringValue": "1.5"} and first[4] == {"isNull": True}
    assert [c["name"] for c in page["ColumnMetadata"]] == ["n", "name", "amount", "even", "nothing"]


def test_a_batch_is_one_transaction_and_describes_its_sub_statements(client, database) -> None:
    sqls = ["create table t (id int)", "insert into t values (1), (2)", "insert into missing values (1)", "select 1"]
    started = client.batch_execute_statement(WorkgroupName="wg-1", Database=database, Sqls=sqls)
    description = wait(client, started["Id"])
    assert description["Status"] == "FAILED" and description["Error"] == 'ERROR: relation "missing" does not exist'
    subs = description["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{started['Id']}:{n}" for n in range(1, 5)]
    assert [s["Status"] for s in subs] == ["FINISHED", "FINISHED", "FAILED", "ABORTED"]
    assert subs[1]["ResultRows"] == 2
    check = client.execute_statement(WorkgroupName="wg-1", Database=database, Sql="select to_regclass('t') is null")
    wait(client, check["Id"])
    assert client.get_statement_result(Id=check["Id"])["Records"] == [[{"booleanValue": True}]]  # rolled back whole

    ok = client.batch_execute_statement(WorkgroupName="wg-1", Database=database, Sqls=sqls[:2] + ["select count(*) from t"])
    assert wait(client, ok["Id"])["Status"] == "FINISHED"
    assert client.get_statement_result(Id=f"{ok['Id']}:3")["Records"] == [[{"longValue": 2}]]
    with pytest.raises(ClientError, match="sub-statement"):
        client.get_statement_result(Id=ok["Id"])


def test_one_statement_per_call_and_the_documented_limits(client, database) -> None:
    two = client.execute_statement(ClusterIdentifier="c1", Database=database, Sql="select 1; select 2")
    assert wait(client, two["Id"])["Error"] == "ERROR: cannot insert multiple commands into a prepared statement"
    with pytest.raises(ClientError, match="less than or equal to 40") as caught:
        client.batch_execute_statement(ClusterIdentifier="c1", Database=database, Sqls=["select 1"] * 41)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="100 KB"):
        client.execute_statement(ClusterIdentifier="c1", Database=database, Sql="select '" + "x" * 102_400 + "'")
    with pytest.raises(ClientError, match="ClusterIdentifier or WorkgroupName"):
        client.execute_statement(Database=database, Sql="select 1")
    with pytest.raises(ClientError, match="sessionKeepAliveSeconds.*value less than or equal to 86400"):
        client.execute_statement(ClusterIdentifier="c1", Database=database, Sql="select 1", SessionKeepAliveSeconds=86401)


def test_sessions_keep_settings_run_one_statement_at_a_time_and_expire(client, database, dataapi) -> None:
    first = client.execute_statement(
        ClusterIdentifier="c1", Database=database, Sql="set search_path to pg_catalog", SessionKeepAliveSeconds=1
    )
    session = first["SessionId"]
    wait(client, first["Id"])
    with pytest.raises(ClientError, match="cannot be specified with SessionId"):
        client.execute_statement(SessionId=session, Database=database, Sql="select 1")
    busy = client.execute_statement(SessionId=session, Sql="select pg_sleep(0.5), current_setting('search_path')")
    with pytest.raises(ClientError, match="busy"):
        client.execute_statement(SessionId=session, Sql="select 1")
    wait(client, busy["Id"])
    assert client.get_statement_result(Id=busy["Id"])["Records"][0][1] == {"stringValue": "pg_catalog"}
    time.sleep(1.6)
    with pytest.raises(ClientError, match="not available"):
        client.execute_statement(SessionId=session, Sql="select 1")


def test_cancel_aborts_a_running_statement(client, database) -> None:
    started = client.execute_statement(ClusterIdentifier="c1", Database=database, Sql="select pg_sleep(30)")
    while client.describe_statement(Id=started["Id"])["Status"] != "STARTED":
        time.sleep(0.005)
    assert client.cancel_statement(Id=started["Id"])["Status"] is True
    assert wait(client, started["Id"])["Status"] == "ABORTED"
    with pytest.raises(ClientError, match="already in ABORTED state"):
        client.cancel_statement(Id=started["Id"])


def test_secrets_and_unknown_statements(client, database, dataapi) -> None:
    dataapi.secrets["arn:aws:secretsmanager:us-east-1:123456789012:secret:rig"] = "postgres"
    started = client.execute_statement(
        ClusterIdentifier="c1", Database=database, SecretArn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rig", Sql="select 1"
    )
    assert wait(client, started["Id"])["Status"] == "FINISHED"
    with pytest.raises(ClientError, match="not found"):
        client.execute_statement(ClusterIdentifier="c1", Database=database, SecretArn="arn:aws:secretsmanager:x:1:secret:nope", Sql="select 1")
    with pytest.raises(ClientError) as caught:
        client.describe_statement(Id="00000000-0000-0000-0000-000000000000")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
