"""The redshift:// target: URL options, where the password comes from, and the session through the rig."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import boto3
import psycopg
import pytest
import redshift_connector
from botocore.stub import Stubber
from moto import mock_aws

from dbops.errors import ConfigError, ConnectError
from dbops.targets import open_target
from dbops.targets.base import ConnectionLost, Dialect, SqlError
from dbops.targets.redshift import RedshiftTarget
from dbops.targets.redshift_auth import IAM_DURATION_SECONDS

REGION = "eu-west-1"


class ConnectSpy:
    """Stands in for redshift_connector.connect: records the arguments, then refuses like an unreachable server."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict] = []
        self.error = error or redshift_connector.InterfaceError("communication error", ConnectionRefusedError(111, "refused"))

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        raise self.error


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
    recorder = ConnectSpy()
    monkeypatch.setattr(redshift_connector, "connect", recorder)
    return recorder


def test_defaults_are_redshifts_port_verified_ssl_and_the_table_lock(spy, monkeypatch) -> None:
    monkeypatch.setenv("DBOPS_PASSWORD", "from-the-environment")
    target = open_target("redshift://alice@warehouse.example.com/dev")
    assert isinstance(target, RedshiftTarget)
    assert (target.lock_kind, target.user, target.database) == ("table", "alice", "dev")
    assert target.info().ssl == "on (sslmode=verify-ca)"
    assert target.info().driver == "redshift_connector"
    with pytest.raises(ConnectError) as raised:
        target.connect()
    call = spy.calls[0]
    assert (call["host"], call["port"], call["database"], call["user"]) == ("warehouse.example.com", 5439, "dev", "alice")
    assert (call["ssl"], call["sslmode"], call["password"]) == (True, "verify-ca", "from-the-environment")
    assert call["application_name"].startswith("dbops ")
    assert raised.value.exit_code == 3
    assert "redshift://alice@warehouse.example.com/dev" in str(raised.value)


def test_sslmode_disable_turns_ssl_off_and_info_says_so(spy) -> None:
    target = RedshiftTarget("redshift://alice@localhost:5440/dev?sslmode=disable&lock=advisory")
    assert target.info().ssl == "off (sslmode=disable)"
    assert target.lock_kind == "advisory"
    with pytest.raises(ConnectError):
        target.connect()
    assert (spy.calls[0]["ssl"], spy.calls[0]["port"]) == (False, 5440)


def test_verify_full_is_passed_on(spy) -> None:
    target = RedshiftTarget("redshift://alice@h/dev?sslmode=verify-full")
    with pytest.raises(ConnectError):
        target.connect()
    assert (spy.calls[0]["ssl"], spy.calls[0]["sslmode"]) == (True, "verify-full")
    assert target.info().ssl == "on (sslmode=verify-full)"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redshift://alice@h/dev?sslmode=require", "sslmode=require.*verify-ca"),
        ("redshift://alice@h/dev?secretarn=x", "unknown parameter.*secretarn"),
        ("redshift://alice@h/?sslmode=disable", "needs a host and a database"),
        ("redshift://h/dev", "needs a user"),
        ("redshift://alice@h/dev?iam=true", "cluster_identifier=.*workgroup="),
        ("redshift://alice@h/dev?iam=true&cluster_identifier=c&workgroup=w", "cluster_identifier=.*workgroup="),
        ("redshift://alice@h/dev?iam=true&cluster_identifier=c&secret_arn=arn:aws:x", "either iam=true or secret_arn="),
        ("redshift://alice@h/dev?cluster_identifier=c", "add iam=true"),
        ("redshift://alice@h/dev?iam=maybe&cluster_identifier=c", "iam=maybe is not true or false"),
        ("redshift://alice@h/dev?lock=row", "lock=row"),
        ("redshift://alice@h:notaport/dev", "invalid database URL"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        RedshiftTarget(url)
    assert raised.value.exit_code == 2


def test_password_in_the_url_never_shows(spy) -> None:
    spy.error = redshift_connector.InterfaceError("authentication failed for pw-in-url-123")
    target = RedshiftTarget("redshift://alice:pw-in-url-123@h/dev")
    assert "pw-in-url-123" not in target.redacted_url + target.info().url
    with pytest.raises(ConnectError) as raised:
        target.connect()
    assert spy.calls[0]["password"] == "pw-in-url-123"
    assert "pw-in-url-123" not in str(raised.value)
    assert "pw-in-url-123" not in repr(target.credentials()) + repr(target.auth)


def _secret(client, value: dict | str) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return client.create_secret(Name=f"redshift!cluster-{time.monotonic_ns()}", SecretString=text)["ARN"]


@mock_aws
def test_secret_arn_reads_the_managed_master_password_json(spy) -> None:
    arn = _secret(boto3.client("secretsmanager", region_name=REGION), {"username": "admin", "password": "s3cret-Value!9"})
    target = RedshiftTarget(f"redshift://h/dev?secret_arn={arn}")
    assert target.user == "admin"
    with pytest.raises(ConnectError) as raised:
        target.connect()
    assert (spy.calls[0]["user"], spy.calls[0]["password"]) == ("admin", "s3cret-Value!9")
    assert "s3cret-Value!9" not in str(raised.value) + repr(target.credentials())


@mock_aws
def test_user_in_the_url_wins_over_the_secrets_username(spy) -> None:
    arn = _secret(boto3.client("secretsmanager", region_name=REGION), {"username": "admin", "password": "pw"})
    assert RedshiftTarget(f"redshift://deployer@h/dev?secret_arn={arn}&region={REGION}").credentials().user == "deployer"


@mock_aws
@pytest.mark.parametrize("value", ["not json at all: hunter2", {"user": "admin", "pass": "hunter2"}, '["hunter2"]'])
def test_secret_of_the_wrong_shape_is_a_config_error_without_its_value(value) -> None:
    arn = _secret(boto3.client("secretsmanager", region_name=REGION), value)
    with pytest.raises(ConfigError, match='"username" and "password"') as raised:
        RedshiftTarget(f"redshift://h/dev?secret_arn={arn}").credentials()
    assert "hunter2" not in str(raised.value)


@mock_aws
def test_missing_secret_is_a_connect_error_naming_the_arn() -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope-AbCdEf"
    with pytest.raises(ConnectError, match="cannot read secret arn:aws:secretsmanager.*nope-AbCdEf") as raised:
        RedshiftTarget(f"redshift://h/dev?secret_arn={arn}").credentials()
    assert raised.value.exit_code == 3


@mock_aws
def test_iam_on_a_provisioned_cluster_uses_get_cluster_credentials(spy) -> None:
    redshift = boto3.client("redshift", region_name=REGION)
    redshift.create_cluster(
        ClusterIdentifier="warehouse", NodeType="ra3.xlplus", MasterUsername="admin", MasterUserPassword="Passw0rd!x"
    )
    target = RedshiftTarget(f"redshift://alice@h/dev?iam=true&cluster_identifier=warehouse&region={REGION}")
    credentials = target.credentials()
    assert credentials.user == "IAM:alice" and credentials.source == "iam"
    assert credentials.expires_at and credentials.expires_at > time.time() + IAM_DURATION_SECONDS - 120
    assert target.credentials() is credentials
    with pytest.raises(ConnectError) as raised:
        target.connect()
    assert spy.calls[0]["user"] == "IAM:alice" and spy.calls[0]["password"] == credentials.password
    assert credentials.password not in str(raised.value) + repr(credentials)


@mock_aws
def test_iam_for_an_unknown_cluster_is_a_connect_error() -> None:
    target = RedshiftTarget(f"redshift://alice@h/dev?iam=true&cluster_identifier=ghost&region={REGION}")
    with pytest.raises(ConnectError, match="cluster ghost.*ClusterNotFound"):
        target.credentials()


def _in(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


class StubbedClients:
    """A client factory whose clients answer from botocore Stubbers (the calls are checked against AWS's models)."""

    def __init__(self) -> None:
        self.stubbers: dict[str, Stubber] = {}

    def stub(self, service: str) -> Stubber:
        client = boto3.client(service, region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
        stubber = Stubber(client)
        stubber.activate()
        self.stubbers[service] = stubber
        return stubber

    def __call__(self, service: str, region: str | None):
        assert region == REGION
        return self.stubbers[service].client


def test_iam_on_serverless_uses_get_credentials_for_the_workgroup() -> None:
    clients = StubbedClients()
    clients.stub("redshift-serverless").add_response(
        "get_credentials",
        {"dbUser": "IAMR:deployer", "dbPassword": "serverless-token-42", "expiration": _in(900)},
        {"workgroupName": "analytics", "dbName": "dev", "durationSeconds": IAM_DURATION_SECONDS},
    )
    target = RedshiftTarget(f"redshift://h/dev?iam=true&workgroup=analytics&region={REGION}", client_factory=clients)
    assert (target.credentials().user, target.credentials().password) == ("IAMR:deployer", "serverless-token-42")
    clients.stubbers["redshift-serverless"].assert_no_pending_responses()


def test_iam_without_a_user_maps_the_iam_identity() -> None:
    clients = StubbedClients()
    clients.stub("redshift").add_response(
        "get_cluster_credentials_with_iam",
        {"DbUser": "IAMR:pipeline", "DbPassword": "with-iam-token", "Expiration": _in(900)},
        {"DbName": "dev", "ClusterIdentifier": "warehouse", "DurationSeconds": IAM_DURATION_SECONDS},
    )
    target = RedshiftTarget(f"redshift://h/dev?iam=true&cluster_identifier=warehouse&region={REGION}", client_factory=clients)
    assert target.user == "IAMR:pipeline"


def test_expiring_iam_credentials_are_fetched_again() -> None:
    clients = StubbedClients()
    stubber = clients.stub("redshift")
    params = {
        "DbUser": "alice", "DbName": "dev", "ClusterIdentifier": "warehouse",
        "DurationSeconds": IAM_DURATION_SECONDS, "AutoCreate": True, "DbGroups": ["etl", "ro"],
    }
    stubber.add_response("get_cluster_credentials", {"DbUser": "IAMA:alice", "DbPassword": "first", "Expiration": _in(30)}, params)
    stubber.add_response("get_cluster_credentials", {"DbUser": "IAMA:alice", "DbPassword": "second", "Expiration": _in(900)}, params)
    target = RedshiftTarget(
        f"redshift://alice@h/dev?iam=true&cluster_identifier=warehouse&region={REGION}&auto_create=true&db_groups=etl,ro",
        client_factory=clients,
    )
    assert [target.credentials().password for _ in range(3)] == ["first", "second", "second"]
    stubber.assert_no_pending_responses()


# --- the session, through pgbouncer in front of PostgreSQL -------------------------------------------------------


@pytest.fixture
def session(rs_url):
    opened = RedshiftTarget(rs_url).connect()
    yield opened
    opened.close()


def test_session_detects_postgresql_and_reports_rowcounts(session, rs_db) -> None:
    assert (session.dialect, session.user, session.database) == (Dialect.POSTGRESQL, "postgres", rs_db.name)
    assert session.execute("create table t (id int, note varchar(20))") == -1
    assert session.execute("insert into t values (%s, %s), (%s, %s)", (1, "50%", 2, "x")) == 2
    assert session.execute("update t set note = note || '%' where note like '5%'") == 1
    assert session.query("select id, note from t where note like %s order by id", ("5%%",)) == [(1, "50%%")]
    session.commit()
    assert psycopg.connect(rs_db.pg_url).execute("select count(*) from t").fetchone() == (2,)


def test_sql_errors_carry_the_servers_message_and_sqlstate(session) -> None:
    with pytest.raises(SqlError, match='relation "missing" does not exist') as raised:
        session.query("select * from missing")
    assert raised.value.sqlstate == "42P01"
    session.rollback()
    assert session.query("select 1") == [(1,)]


def test_autocommit_after_an_implicit_transaction_lets_vacuum_run(session) -> None:
    session.execute("create table v (id int)")
    session.commit()
    assert session.query("select count(*) from v") == [(0,)]  # redshift_connector has begun a transaction again
    session.set_autocommit(True)
    assert session.execute("vacuum v") == -1
    session.set_autocommit(False)
    session.execute("insert into v values (1)")
    session.rollback()
    assert session.query("select count(*) from v") == [(0,)]


def test_a_terminated_backend_is_connection_lost_exit_3(session, rs_db) -> None:
    with psycopg.connect(rs_db.pg_url, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", (session.backend_pid(),))
    with pytest.raises(ConnectionLost) as raised:
        session.query("select 1")
    assert raised.value.exit_code == 3


def test_unknown_database_is_a_connect_error(bouncer) -> None:
    with pytest.raises(ConnectError, match="cannot connect to redshift://postgres@127.0.0.1") as raised:
        RedshiftTarget(bouncer.url("no_such_database")).connect()
    assert raised.value.exit_code == 3
