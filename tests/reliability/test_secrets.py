"""A known password, secret value or IAM token goes through every command, the Dagster job, the sensors and the
failure paths; every byte they leave behind is searched for it: stdout, stderr, logs (DEBUG and up), exception
text, --json, the audit and history rows, the Dagster instance's files (run tags, config, event log, metadata).
SSL to Redshift is on unless the URL turns it off, and `dbops info` says which.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import boto3
import psycopg
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from dbops.cli import main
from dbops.engine.locks import make_lock
from dbops.targets import open_target
from tests.pg import PgServer
from tests.rig import Bouncer
from tests.tls import tls_bouncer_for

PASSWORD = "Zq9!s3cr@t/pw#1 ;"
SECRET_VALUE = "Sm-p4ss:w0rd%x&y"
IAM_TOKEN = "IAMt0ken-AbCdEf0123+/=="
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYaws3cr3t"
REGION = "eu-west-1"
SOURCES = ("postgresql url", "postgresql DBOPS_PASSWORD", "redshift url", "redshift DBOPS_PASSWORD", "secret_arn", "iam")


def forms(secret: str) -> set[str]:
    """The secret as written, and as it appears inside a URL."""
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}


@dataclass
class Capture:
    """Everything the runs below produce, for one grep at the end."""

    secret: str
    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str | bytes) -> None:
        self.texts.append((where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text))

    def assert_clean(self) -> None:
        hits = [(where, needle) for where, text in self.texts for needle in forms(self.secret) if needle in text]
        assert not hits, f"the secret leaked into: {sorted({w for w, _ in hits})}"


class RecordEverything(logging.Handler):
    """Every log record from every logger, DEBUG and up, with its exception text."""

    def __init__(self, capture: Capture) -> None:
        super().__init__(logging.DEBUG)
        self.capture = capture
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.capture.add(f"log {record.name}", self.format(record) + repr(record.args))


@pytest.fixture
def logs() -> Iterator[list[RecordEverything]]:
    root = logging.getLogger()
    level, handlers = root.level, []
    root.setLevel(logging.DEBUG)
    yield handlers
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


@dataclass
class Setup:
    url: str
    pg_url: str
    capture: Capture
    env: dict[str, str]


def stub_iam(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's redshift client answers get_cluster_credentials with the known token (botocore Stubber)."""
    client = boto3.client("redshift", region_name=REGION, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=AWS_SECRET_KEY)
    stubber = Stubber(client)
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=15)
    for _ in range(60):
        stubber.add_response("get_cluster_credentials", {"DbUser": "IAM:postgres", "DbPassword": IAM_TOKEN, "Expiration": expires})
    stubber.activate()
    real = boto3.client
    monkeypatch.setattr(boto3, "client", lambda service, *a, **k: client if service == "redshift" else real(service, *a, **k))


@pytest.fixture(params=SOURCES)
def setup(request: pytest.FixtureRequest, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, logs, tmp_path: Path) -> Iterator[Setup]:
    source = request.param
    name = pg_server.create_database("secret")
    pg_url = pg_server.url(name)
    for variable in [v for v in os.environ if v.startswith(("DBOPS_", "AWS_", "DAGSTER_HOME"))]:
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    request.getfixturevalue("dbops_home")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    env: dict[str, str] = {}
    if source.startswith("postgresql"):
        url = pg_url.replace("postgres@", f"postgres:{quote(PASSWORD, safe='')}@") if source.endswith("url") else pg_url
    else:
        bouncer: Bouncer = request.getfixturevalue("bouncer")
        url = bouncer.url(name)
        if source == "redshift url":
            url = url.replace("postgres@", f"postgres:{quote(PASSWORD, safe='')}@")
        elif source == "secret_arn":
            mock = mock_aws()
            mock.start()
            request.addfinalizer(mock.stop)
            arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
                Name="redshift!warehouse-admin", SecretString=json.dumps({"username": "postgres", "password": SECRET_VALUE}))["ARN"]
            url = url.replace("postgres@", "") + f"&secret_arn={arn}"
        elif source == "iam":
            stub_iam(monkeypatch)
            url += f"&iam=true&cluster_identifier=warehouse&region={REGION}"
    if source.endswith("DBOPS_PASSWORD"):
        monkeypatch.setenv("DBOPS_PASSWORD", PASSWORD)
    capture = Capture({"secret_arn": SECRET_VALUE, "iam": IAM_TOKEN}.get(source, PASSWORD))
    handler = RecordEverything(capture)  # from here on: the test's own AWS calls above are not dbops's to hide
    logging.getLogger().addHandler(handler)
    logs.append(handler)
    yield Setup(url=url, pg_url=pg_url, capture=capture, env=env)
    capture.assert_clean()


def dbops(setup: Setup, capsys: pytest.CaptureFixture, folder: Path, *args: str) -> tuple[int, str, str]:
    """`dbops ARGS` in-process; stdout, stderr and any exception's text go into the capture."""
    try:
        code = main(["--url", setup.url, "--locations", str(folder), *args])
    except BaseException as exc:
        setup.capture.add(f"exception from {args}", repr(exc) + str(exc))
        raise
    out, err = capsys.readouterr()
    setup.capture.add(f"stdout of {args}", out)
    setup.capture.add(f"stderr of {args}", err)
    return code, out, err


def unreachable_url(url: str) -> str:
    """The same URL, with the secret, pointing where nothing listens."""
    return re.sub(r"127\.0\.0\.1:\d+/", "127.0.0.1:1/", url).replace("?host=", "?port=1&host=")


def database_rows(setup: Setup) -> None:
    with psycopg.connect(setup.pg_url) as conn:
        for table in ("dbops_audit", "flyway_schema_history"):
            setup.capture.add(f"table {table}", repr(conn.execute(f"select * from {table}").fetchall()))


def every_file(setup: Setup, root: Path) -> int:
    count = 0
    for path in root.rglob("*"):
        if path.is_file():
            setup.capture.add(f"file {path.relative_to(root)}", path.read_bytes())
            count += 1
    return count


SCRIPTS = {
    "V1__orders.sql": "create table orders (id int, total numeric(10, 2));\n",
    "V2__load.sql": "insert into orders values (1, 9.5), (2, 12);\n",
    "U2__load.sql": "delete from orders;\n",
    "R__totals.sql": "create or replace view totals as select sum(total) as total from orders;\n",
}


def test_no_command_or_failure_path_shows_the_secret(setup, scripts, capsys, figure) -> None:
    folder = scripts(SCRIPTS)
    runs = [
        (("--json", "info"), 0), (("-v", "info"), 0), (("validate",), 0), (("lint",), 0),
        (("-v", "--json", "migrate", "--direct", "--commit", "abc", "--author", "Ann"), 0),
        (("migrate", "--dry-run"), 0), (("--json", "validate"), 0), (("-v", "undo"), 0), (("repair",), 0),
        (("-v", "migrate", "--direct"), 0), (("baseline", "--version", "9"), 2),
    ]
    for args, expected in runs:
        code, _, err = dbops(setup, capsys, folder, *args)
        assert code == expected, (args, err)
    (folder / "V3__broken.sql").write_text("insert into no_such_table values (1);\n")
    code, _, err = dbops(setup, capsys, folder, "-v", "migrate", "--direct")
    assert code == 1 and "no_such_table" in err

    holder = make_lock(open_target(setup.url), "public", "flyway_schema_history")
    holder.acquire(10)
    try:
        code, _, err = dbops(setup, capsys, folder, "-v", "--json", "migrate", "--direct", "--lock-timeout", "0.3")
        assert code == 3 and "held by dbops" in err
    finally:
        holder.release()
    (folder / "V3__broken.sql").unlink()

    unreachable = unreachable_url(setup.url)
    for url, expected in ((unreachable, 3), (setup.url + "&frobnicate=1", 2)):
        code, _, err = dbops(Setup(url, setup.pg_url, setup.capture, setup.env), capsys, folder, "-v", "info")
        assert code == expected, err
    database_rows(setup)
    figure("commands run per secret source", len(runs) + 4)


def test_the_dagster_run_and_its_failures_keep_the_secret_out_of_the_instance(setup, scripts, capsys, tmp_path) -> None:
    folder = scripts(SCRIPTS)
    code, out, err = dbops(setup, capsys, folder, "-v", "migrate", "--commit", "c0ffee", "--message", "load orders")
    assert code == 0, err
    (folder / "V3__broken.sql").write_text("insert into no_such_table values (1);\n")
    code, _, err = dbops(setup, capsys, folder, "-v", "--json", "migrate")
    assert code == 1 and "no_such_table" in err
    unreachable = unreachable_url(setup.url)
    code, _, err = dbops(Setup(unreachable, setup.pg_url, setup.capture, setup.env), capsys, folder, "-v", "migrate")
    assert code == 3, err
    home = Path(os.environ["DBOPS_HOME"]) / "dagster_home"
    assert every_file(setup, home) > 0
    from dagster import DagsterInstance

    from dbops.orchestration.home import embedded_storage_url

    with psycopg.connect(embedded_storage_url()) as conn:  # the instance's storage: every table, every row
        tables = [t for (t,) in conn.execute("select table_name from information_schema.tables where table_schema = 'public'")]
        assert "event_logs" in tables and "runs" in tables
        for table in tables:
            setup.capture.add(f"storage table {table}", repr(conn.execute(f'select * from "{table}"').fetchall()))

    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            setup.capture.add("run tags and config", json.dumps({"tags": run.tags, "config": run.run_config}, default=str))
            for record in instance.all_logs(run.run_id):
                setup.capture.add("event log", repr(record))
    database_rows(setup)


def test_sensor_errors_never_show_a_repository_password(tmp_path, monkeypatch, logs) -> None:
    from dagster import Definitions, build_sensor_context, define_asset_job

    from dbops.orchestration.sensors import Watch, build_sensors

    capture = Capture(PASSWORD)
    handler = RecordEverything(capture)
    logging.getLogger().addHandler(handler)
    logs.append(handler)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    job = define_asset_job("migrate")
    url = f"https://deployer:{quote(PASSWORD, safe='')}@127.0.0.1:1/warehouse.git"
    codecommit, git = build_sensors(job, git=Watch("git", url), codecommit=Watch("codecommit", "warehouse", region=REGION))
    defs = Definitions(jobs=[job], sensors=[codecommit, git])
    for sensor in (git, codecommit):
        with mock_aws():
            result = sensor.evaluate_tick(build_sensor_context(definitions=defs, cursor=None))
        capture.add(f"{sensor.name} result", repr(result) + str(result.skip_message) + repr(result.run_requests))
        assert result.skip_message and not result.run_requests
    capture.assert_clean()
    Capture(AWS_SECRET_KEY, capture.texts).assert_clean()


# --- environments -----------------------------------------------------------------------------------------------

ENVIRONMENT_PASSWORDS = {"pg-a": "Aa9!env-a/pw#1 ;", "rs-b": "Bb8:env-b%pw&2", "gone": "Cc7@env-c pw=3"}


def test_no_environment_password_shows_in_any_output_log_or_row(pg_server, bouncer, scripts, capsys, monkeypatch, tmp_path, logs) -> None:
    """Several environments, each with its own password variable, through every fleet command and failure path."""
    for variable in [v for v in os.environ if v.startswith("DBOPS_")]:
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    folder = scripts(SCRIPTS)
    monkeypatch.setenv("DBOPS_LOCATIONS", str(folder))
    a, b = pg_server.create_database("env_a"), pg_server.create_database("env_b")
    (tmp_path / "flyway.toml").write_text(
        f'[environments.pg-a]\nurl = "{pg_server.url(a)}"\n'
        f'[environments.rs-b]\nurl = "{bouncer.url(b)}"\npassword = "${{env.RS_B_SECRET}}"\n'
        '[environments.gone]\nurl = "postgresql://postgres@127.0.0.1:1/gone"\n'
    )
    monkeypatch.setenv("DBOPS_PASSWORD_PG_A", ENVIRONMENT_PASSWORDS["pg-a"])
    monkeypatch.setenv("RS_B_SECRET", ENVIRONMENT_PASSWORDS["rs-b"])
    monkeypatch.setenv("DBOPS_PASSWORD_GONE", ENVIRONMENT_PASSWORDS["gone"])
    capture = Capture("")
    handler = RecordEverything(capture)
    logging.getLogger().addHandler(handler)
    logs.append(handler)

    def fleet(*args: str) -> int:
        code = main(list(args))
        out, err = capsys.readouterr()
        capture.add(f"output of {args}", out + err)
        return code

    assert fleet("-v", "-e", "*", "migrate", "--direct", "--parallel", "3") == 3
    assert fleet("--json", "-e", "*", "info", "--parallel", "2") == 3
    assert fleet("-v", "-e", "*", "validate") == 3
    assert fleet("-v", "-e", "rs-b", "--json", "info") == 0
    (folder / "V3__broken.sql").write_text("insert into no_such_table values (1);\n")
    assert fleet("-v", "--json", "-e", "pg-a,rs-b", "migrate", "--direct") == 1
    for name in (a, b):
        with psycopg.connect(pg_server.url(name)) as conn:
            for table in ("dbops_audit", "flyway_schema_history"):
                capture.add(f"table {table} of {name}", repr(conn.execute(f"select * from {table}").fetchall()))
    assert any("no_such_table" in text for _, text in capture.texts)
    for password in ENVIRONMENT_PASSWORDS.values():
        Capture(password, capture.texts).assert_clean()


def test_a_rollout_keeps_every_environments_password_out_of_every_run_log_and_tag(pg_server, scripts, capsys, monkeypatch, tmp_path, logs, dbops_home) -> None:
    """`dbops rollout` over environments with their own passwords, one unreachable: no password in any run's tags,
    config, event log or compute logs, in the instance's storage, in the output or in the logs."""
    for variable in [v for v in os.environ if v.startswith(("DBOPS_", "DAGSTER_HOME")) and v != "DBOPS_HOME"]:
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    scripts(SCRIPTS)
    passwords = {"wave0-a": "W0a!pw/#1 ;", "wave0-b": "W0b:pw%&2", "wave1-a": "W1a@pw =3", "wave1-gone": "W1g$pw+4"}
    lines = []
    for number, (name, password) in enumerate(passwords.items()):
        url = "postgresql://postgres@127.0.0.1:1/gone?connect_timeout=3" if name.endswith("gone") else pg_server.url(pg_server.create_database("roll"))
        lines += [f"[environments.{name}]", f'url = "{url}"', f"[dbops.environments.{name}]", f"wave = {number // 2}", ""]
        monkeypatch.setenv(f"DBOPS_PASSWORD_{name.upper().replace('-', '_')}", password)
    (tmp_path / "flyway.toml").write_text("\n".join(lines))
    capture = Capture("")
    handler = RecordEverything(capture)
    logging.getLogger().addHandler(handler)
    logs.append(handler)
    for args in (("-v", "rollout", "--parallel", "2", "--commit", "c0ffee"), ("--json", "rollout", "--commit", "c0ffee")):
        code = main(list(args))
        out, err = capsys.readouterr()
        capture.add(f"output of {args}", out + err)
        assert code == 1 and "wave1-gone" in err, err
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert {r.tags["dbops/environment"] for r in runs} == set(passwords)
        for run in runs:
            capture.add(f"run {run.tags['dbops/environment']}", json.dumps({"tags": run.tags, "config": run.run_config}, default=str))
            for record in instance.all_logs(run.run_id):
                capture.add(f"event log of {run.tags['dbops/environment']}", repr(record))
    from dbops.orchestration.home import embedded_storage_url

    with psycopg.connect(embedded_storage_url()) as conn:
        for (table,) in conn.execute("select table_name from information_schema.tables where table_schema = 'public'").fetchall():
            capture.add(f"storage table {table}", repr(conn.execute(f'select * from "{table}"').fetchall()))
    for path in home.rglob("*"):
        if path.is_file():
            capture.add(f"file {path.relative_to(home)}", path.read_bytes())
    for password in passwords.values():
        Capture(password, capture.texts).assert_clean()


# --- SSL --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_bouncer(pg_server: PgServer) -> Iterator[tuple[Bouncer, Path]]:
    """pgbouncer that requires TLS from its clients, with a certificate from a CA of this test."""
    with tls_bouncer_for(pg_server) as running:
        yield running


def info(capsys: pytest.CaptureFixture, url: str, folder: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--url", url, "--locations", str(folder), "info", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_ssl_is_on_unless_the_url_turns_it_off_and_info_says_which(tls_bouncer, bouncer, pg_server, scripts, capsys, monkeypatch) -> None:
    tls, ca = tls_bouncer
    folder = scripts({"V1__a.sql": "select 1;"})
    name = pg_server.create_database("tls")
    verified = f"redshift://postgres@127.0.0.1:{tls.port}/{name}"

    code, _, err = info(capsys, verified, folder)  # the CA is not trusted yet: verify-ca refuses the server
    assert code == 3 and "certificate verify failed" in err and "SSL on (sslmode=verify-ca)" in err, err

    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # OpenSSL's default trust store, which redshift_connector loads
    for url, said in ((verified, "on (sslmode=verify-ca)"), (f"{verified}?sslmode=verify-full", "on (sslmode=verify-full)")):
        code, out, err = info(capsys, url, folder)
        assert code == 0, err
        assert f"(SSL: {said})" in out
        code, out, err = info(capsys, url, folder, "--json")
        assert json.loads(out)["ssl"] == said

    code, _, err = info(capsys, f"{verified}?sslmode=disable", folder)
    assert code == 3 and "SSL off (sslmode=disable)" in err, err  # this pgbouncer requires TLS: plain text is refused
    code, out, err = info(capsys, bouncer.url(name), folder)  # the plain rig: SSL off, said so
    assert code == 0 and "(SSL: off (sslmode=disable))" in out, err
