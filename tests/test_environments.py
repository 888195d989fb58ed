"""flyway.toml environments: Flyway's layout read as Flyway reads it, dbops's additions, selection, settings, refusals."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dbops.cli import main
from dbops.environments import load_environments, load_file, select, selected, settings_for
from dbops.errors import ConfigError
from dbops.fleet_commands import child_arguments
from dbops.fleet_workers import shares, worker_environment

FLYWAY_SAMPLE = """\
[flyway]
environment = "dev"
locations = ["filesystem:migrations"]
table = "schema_history"

[flyway.placeholders]
owner = "platform"
days = "7"

[environments.dev]
url = "jdbc:postgresql://db.dev.internal:5432/warehouse?sslmode=require&ApplicationName=ci"
user = "migrator"
schemas = ["analytics", "staging"]

[environments.dev.flyway.placeholders]
days = "30"

[environments.prod-eu]
url = "jdbc:redshift://prod.abc123.eu-west-1.redshift.amazonaws.com:5439/dev?ssl=true"
user = "deployer"
password = "${env.PROD_EU_PASSWORD}"

[environments.prod-us]
url = "jdbc:redshift:iam://wh.abc123.us-east-1.redshift.amazonaws.com:5439/dev"

[environments.tenant-a]
url = "redshift://tenants.example.com:5439/a"
user = "a"

[environments.tenant_b]
url = "postgresql://tenants.example.com/b"

[dbops.environments.prod-eu]
wave = 2
tags = { region = "eu-west-1" }

[dbops.environments.prod-us]
wave = 2
tags = { region = "us-east-1" }

[dbops.environments.tenant-a]
wave = 1
tags = { region = "eu-west-1", tenant = "a" }
secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-a"

[dbops.environments.tenant_b]
wave = 1
tags = { tenant = "b" }
password_variable = "TENANT_B_PW"
"""


def write(tmp_path: Path, text: str, name: str = "flyway.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write(tmp_path, FLYWAY_SAMPLE)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with no DBOPS_* settings of the caller's."""
    monkeypatch.chdir(tmp_path)
    for name in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_ENVIRONMENT", "DBOPS_FLYWAY_TOML", "DBOPS_CONFIG", "DBOPS_LOCATIONS", "DBOPS_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def refused(path: Path, capsys: pytest.CaptureFixture, *args: str) -> str:
    """`dbops ARGS` must exit 2 without a traceback; its error line."""
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_flyway_environments_map_to_dbops_urls_users_and_schemas(sample: Path) -> None:
    envs = load_environments(sample)
    assert list(envs) == ["dev", "prod-eu", "prod-us", "tenant-a", "tenant_b"]
    dev = envs["dev"]
    assert dev.url == "postgresql://db.dev.internal:5432/warehouse?sslmode=require&application_name=ci"
    assert dev.target_url(environ={}) == "postgresql://migrator@db.dev.internal:5432/warehouse?sslmode=require&application_name=ci"
    assert dev.schemas == ("analytics", "staging")
    assert envs["prod-eu"].url == "redshift://prod.abc123.eu-west-1.redshift.amazonaws.com:5439/dev"
    assert envs["prod-us"].target_url(environ={}) == (
        "redshift://wh.abc123.us-east-1.redshift.amazonaws.com:5439/dev?iam=true&cluster_identifier=wh&region=us-east-1"
    )
    assert envs["tenant-a"].target_url(environ={}).endswith("?secret_arn=arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-a")
    assert (envs["tenant-a"].wave, envs["tenant-a"].tags) == (1, {"region": "eu-west-1", "tenant": "a"})
    assert load_file(sample).default == "dev"


def test_each_environment_reads_only_its_own_password_variable(sample: Path) -> None:
    envs = load_environments(sample)
    environ = {"PROD_EU_PASSWORD": "eu p@ss/1", "TENANT_B_PW": "b-pw", "DBOPS_PASSWORD_DEV": "dev-pw", "DBOPS_PASSWORD_TENANT_A": "a-pw"}
    assert [envs[n].password_variable for n in envs] == [
        "DBOPS_PASSWORD_DEV", "PROD_EU_PASSWORD", "DBOPS_PASSWORD_PROD_US", "DBOPS_PASSWORD_TENANT_A", "TENANT_B_PW"
    ]
    assert envs["prod-eu"].target_url(environ) == "redshift://deployer:eu%20p%40ss%2F1@prod.abc123.eu-west-1.redshift.amazonaws.com:5439/dev"
    assert envs["tenant_b"].target_url(environ) == "postgresql://:b-pw@tenants.example.com/b"
    assert envs["prod-us"].password(environ) is None
    assert "eu p@ss" not in envs["prod-eu"].redacted_url and "***" not in envs["prod-eu"].redacted_url
    assert "dev-pw" not in repr(envs["dev"])


def test_the_environment_settings_sit_between_the_command_line_and_the_config_files(sample: Path) -> None:
    dev = load_environments(sample)["dev"]
    settings = settings_for(dev, environ={}, conf={"locations": "filesystem:elsewhere", "placeholders.region": "eu"})
    assert settings.locations == ["migrations"]  # [flyway] of flyway.toml over flyway.conf
    assert settings.table == "schema_history"
    assert (settings.schema, settings.schemas) == ("analytics", ["analytics", "staging"])
    assert settings.placeholders == {"owner": "platform", "days": "30", "region": "eu"}  # the environment's on top of [flyway]'s
    flagged = settings_for(dev, flags={"schema": "sandbox", "placeholder": ["days=1"]}, environ={"DBOPS_PLACEHOLDER_OWNER": "me"}, conf={})
    assert (flagged.schema, flagged.placeholders["days"], flagged.placeholders["owner"]) == ("sandbox", "1", "me")


def test_selectors_pick_by_name_glob_tag_and_wave_in_wave_order(sample: Path) -> None:
    envs = load_environments(sample)

    def names(pattern: str) -> list[str]:
        return [e.name for e in select(envs, pattern)]

    assert names("dev") == ["dev"]
    assert names("*") == ["dev", "tenant-a", "tenant_b", "prod-eu", "prod-us"]
    assert names("prod-*") == ["prod-eu", "prod-us"]
    assert names("region=eu-west-1") == ["tenant-a", "prod-eu"]
    assert names("region=*&wave=2") == ["prod-eu", "prod-us"]
    assert names("tenant=*, dev") == ["dev", "tenant-a", "tenant_b"]
    assert names("wave=1") == ["tenant-a", "tenant_b"]
    with pytest.raises(ConfigError, match=r"'staging' matches no environment; known: dev, prod-eu, prod-us, tenant-a, tenant_b"):
        select(envs, "dev,staging")


def test_an_unknown_environment_exits_2_naming_the_known_ones(project: Path, capsys) -> None:
    write(project, FLYWAY_SAMPLE)
    err = refused(project, capsys, "-e", "tenant-x*", "info")
    assert "'tenant-x*' matches no environment; known: dev, prod-eu" in err


def test_a_password_written_in_the_file_is_refused_naming_the_line_and_what_to_do(project: Path, capsys) -> None:
    write(project, '[environments.prod]\nurl = "jdbc:postgresql://h/db"\nuser = "u"\npassword = "hunter2"\n')
    err = refused(project, capsys, "-e", "prod", "info")
    assert "flyway.toml:4: a password is written in the file" in err and "DBOPS_PASSWORD_PROD" in err
    assert "hunter2" not in err


def test_a_password_inside_the_url_is_refused_too(project: Path, capsys) -> None:
    write(project, '[environments.prod]\nurl = "jdbc:postgresql://h/db?user=u&password=hunter2"\n')
    err = refused(project, capsys, "-e", "prod", "info")
    assert "flyway.toml:2: the url holds a password" in err and "hunter2" not in err
    write(project, '[environments.prod]\nurl = "redshift://u:hunter2@h:5439/db"\n')
    err = refused(project, capsys, "-e", "prod", "info")
    assert "flyway.toml:2: the url holds a password" in err and "hunter2" not in err


@pytest.mark.parametrize(
    ("text", "line", "table", "variable"),
    [
        ('[flyway]\npassword = "hunter2"\n[environments.a]\nurl = "postgresql://h/a"\n', 2, "flyway", "each environment's password variable (DBOPS_PASSWORD_<NAME>)"),
        ('[environments.a]\nurl = "postgresql://h/a"\n[environments.a.flyway]\nlocations = ["sql"]\npassword = "hunter2"\n',
         5, "environments.a.flyway", "DBOPS_PASSWORD_A"),
        ('[environments.a]\nurl = "postgresql://h/a"\nflyway.password = "hunter2"\n', 3, "environments.a.flyway", "DBOPS_PASSWORD_A"),
        ('[environments.a]\nurl = "postgresql://h/a"\njdbcProperties = { ssl = "true", password = "hunter2" }\n',
         3, "environments.a.jdbcProperties", "DBOPS_PASSWORD_A"),
        ('[environments.a]\nurl = "postgresql://h/a"\npassword = "${env.A_PW}"\n[environments.a.jdbcProperties]\nPassword = "hunter2"\n',
         5, "environments.a.jdbcProperties", "A_PW"),
    ],
)
def test_a_password_anywhere_else_in_the_file_is_refused_naming_the_line(project: Path, capsys, text, line, table, variable) -> None:
    write(project, text)
    err = refused(project, capsys, "-e", "a", "info")
    assert f"flyway.toml:{line}: `" in err and f"in [{table}]: dbops never reads a password from there" in err
    assert f"set {variable} instead" in err and 'write password = "${env.NAME}"' in err and "hunter2" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[environments.a]\nurl = "jdbc:postgresql://h/db"\nwave = 1\n', "flyway.toml:3: `wave` is dbops's, not Flyway's: move it to [dbops.environments.a]"),
        ('[environments.a]\nurl = "jdbc:postgresql://h/db"\nschema = "x"\n', "flyway.toml:3: unknown key `schema` in [environments.a]"),
        ('[environments.a]\nurl = "jdbc:postgresql://h/db"\n[dbops.environments.b]\nwave = 1\n', "flyway.toml:4: [dbops.environments.b] has no [environments.b]"),
        ('[environments.a]\nurl = "jdbc:postgresql://h/db"\n[dbops.environments.a]\nwave = -1\n', "flyway.toml:4: wave must be a whole number"),
        ('[environments.a]\nurl = "jdbc:postgresql://h/db"\n[dbops.environments.a]\ncolour = "red"\n', "flyway.toml:4: unknown key `colour`"),
        ('[environments.a]\nurl = "jdbc:sqlserver://h;db=x"\n', "flyway.toml:2: url jdbc:sqlserver://h;db=x: dbops drives Redshift and PostgreSQL"),
        ('[environments.a]\nurl = "jdbc:postgresql://h/db?prepareThreshold=0"\n', "JDBC parameter prepareThreshold"),
        ('[environments.a]\nuser = "u"\n', "flyway.toml:1: [environments.a] needs url ="),
        ('[environments.a-b]\nurl = "postgresql://h/a"\n[environments.a_b]\nurl = "postgresql://h/b"\n',
         "environments a-b and a_b would both read their password from DBOPS_PASSWORD_A_B"),
        ('[environments.a]\nurl = "postgresql://h/a"\n[dbops.environments.a]\nsecret_arn = "arn:aws:secretsmanager:eu-west-1:1:secret:x"\n',
         "flyway.toml:4: secret_arn and iam are for Redshift environments"),
        ('[flyway]\nenvironment = "prod"\n[environments.a]\nurl = "postgresql://h/a"\n', "flyway.toml:2: flyway.environment = 'prod' is not one of"),
        ('[environments.a]\nurl = "postgresql://h/a"\npassword = "${vault.a}"\n',
         'flyway.toml:3: dbops resolves only ${env.NAME} in password; write password = "${env.NAME}", or set DBOPS_PASSWORD_A'),
        ('[environments.a]\nurl = "postgresql://h/a\n', "flyway.toml:2: not valid TOML: Illegal character"),
        ('[flyway]\noutOfOrder = "maybe"\n[environments.a]\nurl = "postgresql://h/a"\n',
         "flyway.toml:2: outOfOrder in [flyway]: 'maybe' is not true or false"),
        ('[environments.a]\nurl = "postgresql://h/a"\n[environments.a.flyway]\nmixed = "perhaps"\n',
         "flyway.toml:4: mixed in [environments.a.flyway]: 'perhaps' is not true or false"),
    ],
)
def test_bad_environment_files_exit_2_naming_file_and_line(project: Path, capsys, text: str, expected: str) -> None:
    write(project, text)
    assert expected in refused(project, capsys, "-e", "*", "info")


@pytest.mark.parametrize("url", [
    "jdbc:postgresql://[::1/db", "postgresql://postgres@[::1/db", "jdbc:redshift:iam://[bad/dev", "jdbc:redshift://u:s3cr3t@[bad/dev",
    "redshift://[zz]:5439/dev",
])
def test_a_malformed_host_in_an_environment_url_is_exit_2_naming_the_line(project: Path, capsys, url: str) -> None:
    write(project, f'[environments.a]\nurl = "{url}"\n')
    assert main(["-e", "a", "--json", "info"]) == 2
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["exit_code"] == 2 and document["error"].startswith("flyway.toml:2: url ") and "fix the host" in document["error"]
    assert "Traceback" not in err and "s3cr3t" not in out + err


def test_url_and_environment_together_are_an_error(project: Path, capsys, monkeypatch) -> None:
    write(project, FLYWAY_SAMPLE)
    err = refused(project, capsys, "--url", "postgresql://h/db", "-e", "dev", "info")
    assert "--url and --environment both name the target: give one" in err
    monkeypatch.setenv("DBOPS_URL", "postgresql://h/db")
    assert "DBOPS_URL and --environment both name the target" in refused(project, capsys, "-e", "dev", "info")
    monkeypatch.setenv("DBOPS_ENVIRONMENT", "dev")
    assert "DBOPS_URL and DBOPS_ENVIRONMENT both name the target" in refused(project, capsys, "info")


def test_dbops_password_is_refused_with_environments_so_it_never_reaches_another_server(project: Path, capsys, monkeypatch) -> None:
    write(project, FLYWAY_SAMPLE)
    monkeypatch.setenv("DBOPS_PASSWORD", "shared-secret")
    err = refused(project, capsys, "-e", "tenant-*", "info")
    assert "DBOPS_PASSWORD is set, but environments take their password from their own variable (DBOPS_PASSWORD_TENANT_A)" in err
    assert "shared-secret" not in err


def test_the_selection_comes_from_the_flag_then_dbops_environment_then_flyway_environment(project: Path) -> None:
    write(project, FLYWAY_SAMPLE)
    assert [e.name for e in selected({"environment": "prod-*"}, {"DBOPS_ENVIRONMENT": "dev"})] == ["prod-eu", "prod-us"]
    assert [e.name for e in selected({}, {"DBOPS_ENVIRONMENT": "tenant_b"})] == ["tenant_b"]
    assert [e.name for e in selected({}, {})] == ["dev"]
    assert selected({}, {"DBOPS_URL": "postgresql://h/db"}) is None  # a plain URL works as before
    assert selected({"url": "postgresql://h/db"}, {}) is None
    (project / "flyway.toml").unlink()
    assert selected({}, {}) is None
    with pytest.raises(ConfigError, match="declares no environments"):
        selected({"environment": "dev"}, {})


def test_another_file_through_dbops_flyway_toml(project: Path, monkeypatch) -> None:
    write(project, FLYWAY_SAMPLE, "fleet.toml")
    monkeypatch.setenv("DBOPS_FLYWAY_TOML", str(project / "fleet.toml"))
    assert [e.name for e in selected({"environment": "dev"})] == ["dev"]
    monkeypatch.setenv("DBOPS_FLYWAY_TOML", str(project / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml: environments file not found"):
        selected({"environment": "dev"})


def test_commands_other_than_migrate_info_validate_take_one_environment(project: Path, capsys) -> None:
    write(project, FLYWAY_SAMPLE)
    err = refused(project, capsys, "-e", "prod-*", "repair")
    assert "repair works on one environment at a time, and the selection picks 2 (prod-eu, prod-us); name one with -e NAME" in err


def test_a_bad_parallel_is_exit_2(project: Path, capsys) -> None:
    assert "is not a whole number of environments" in refused(project, capsys, "migrate", "--parallel", "0")


def test_a_worker_gets_its_share_of_environments_and_only_their_passwords(sample: Path, monkeypatch) -> None:
    envs = load_environments(sample)
    for variable, value in {"DBOPS_PASSWORD_DEV": "dev-pw", "PROD_EU_PASSWORD": "eu-pw", "TENANT_B_PW": "b-pw", "DBOPS_ENVIRONMENT": "*"}.items():
        monkeypatch.setenv(variable, value)
    child = worker_environment([envs["prod-eu"]], envs)
    assert child["PROD_EU_PASSWORD"] == "eu-pw"
    assert not {"DBOPS_PASSWORD_DEV", "TENANT_B_PW", "DBOPS_ENVIRONMENT"} & set(child)
    both = worker_environment([envs["prod-eu"], envs["tenant_b"]], envs)
    assert (both["PROD_EU_PASSWORD"], both["TENANT_B_PW"]) == ("eu-pw", "b-pw") and "DBOPS_PASSWORD_DEV" not in both
    ordered = select(envs, "*")
    assert [[e.name for e in share] for share in shares(ordered, 2)] == [["dev", "tenant_b", "prod-us"], ["tenant-a", "prod-eu"]]
    assert len(shares(ordered, 8)) == 5 and len(shares(ordered[:1], 4)) == 1
    argv = ["-e", "*", "--json", "migrate", "--parallel", "4", "--environment=x", "-ey", "--commit", "abc", "--parallel=2"]
    assert child_arguments(argv) == ["migrate", "--commit", "abc"]


def test_json_error_document_for_a_bad_selection(project: Path, capsys) -> None:
    write(project, FLYWAY_SAMPLE)
    assert main(["--json", "-e", "nope", "info"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 2 and "matches no environment" in document["error"]


def readme_section() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.search(r"\n## Environments\n(.*?)\n## ", readme, re.S).group(1)


def test_the_readme_flyway_toml_reads_as_the_readme_says(project: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", readme_section(), re.S).group(1)
    write(project, block)
    declared = load_file(project / "flyway.toml")
    envs = declared.environments
    assert declared.default == "dev" and list(envs) == ["dev", "staging", "tenant-acme", "tenant-globex"]
    assert envs["staging"].password_variable == "STAGING_PASSWORD"
    assert envs["tenant-acme"].password_variable == "DBOPS_PASSWORD_TENANT_ACME"
    assert "iam=true&cluster_identifier=acme&region=eu-west-1" in envs["tenant-acme"].target_url(environ={})
    assert envs["tenant-globex"].secret_arn and envs["tenant-globex"].tags == {"region": "us-east-1", "tenant": "globex"}
    assert settings_for(envs["staging"], environ={}, conf={}).placeholders == {"owner": "staging_owner"}
    assert settings_for(envs["dev"], environ={}, conf={}).schema == "analytics"
    assert [e.name for e in select(envs, "tenant-*&region=eu-*")] == ["tenant-acme"]
    assert [e.name for e in select(envs, "*")] == ["dev", "staging", "tenant-acme", "tenant-globex"]


def test_settings_already_resolved_get_the_environment_on_top(sample: Path) -> None:
    from dbops.config import Settings

    base = Settings(locations=["sql"], schema="public", placeholders={"days": "1", "extra": "x"}, lock_timeout=5.0)
    dev = settings_for(load_environments(sample)["dev"], base)
    assert (dev.locations, dev.schema, dev.schemas, dev.table) == (["migrations"], "analytics", ["analytics", "staging"], "schema_history")
    assert dev.placeholders == {"days": "30", "extra": "x", "owner": "platform"} and dev.lock_timeout == 5.0
    bare = write(sample.parent, '[environments.x]\nurl = "postgresql://h/x"\n', "bare.toml")
    assert settings_for(load_environments(bare)["x"], base) == base


@pytest.fixture
def password_only(pg_server) -> str:
    """A database whose role `pw_only` must give a password over the socket (its pg_hba.conf line comes first);
    returns its URL without one."""
    hba = pg_server.pgdata / "pg_hba.conf"
    line = "local all pw_only scram-sha-256\n"
    if line not in hba.read_text():
        hba.write_text(line + hba.read_text())
    name = pg_server.create_database("pw")
    with pg_server.admin() as conn:
        conn.execute("select pg_reload_conf()")
        if not conn.execute("select 1 from pg_roles where rolname = 'pw_only'").fetchone():
            conn.execute("create role pw_only login password 'right-pw'")
    return f"postgresql://pw_only@/{name}?host={pg_server.socket_dir}"


def test_an_unset_password_variable_is_named_when_the_server_asks_for_a_password(project: Path, capsys, monkeypatch, password_only) -> None:
    write(project, f'[environments.lim]\nurl = "{password_only}"\npassword = "${{env.LIM_PW}}"\n'
                   f'[environments.other]\nurl = "{password_only}"\n')
    (project / "sql").mkdir()
    monkeypatch.delenv("LIM_PW", raising=False)
    monkeypatch.delenv("DBOPS_PASSWORD_OTHER", raising=False)
    assert main(["-e", "lim", "info"]) == 3
    err = capsys.readouterr().err
    assert "cannot connect to" in err and "no password supplied; set LIM_PW (environment lim's password), it is not set" in err
    assert main(["-e", "*", "--json", "info"]) == 3
    rows = {row["environment"]: row for row in json.loads(capsys.readouterr().out)["environments"]}
    assert "set DBOPS_PASSWORD_OTHER (environment other's password)" in rows["other"]["error"]
    assert rows["other"]["status"] == "unreachable" and rows["other"]["exit_code"] == 3
    monkeypatch.setenv("LIM_PW", "right-pw")
    assert main(["-e", "lim", "info"]) == 0
