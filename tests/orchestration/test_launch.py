"""`dbops migrate` without --direct: one run of the migrate job on the instance at DAGSTER_HOME."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from dbops.cli import main
from dbops.targets.embedded import EmbeddedDatabase
from tests.orchestration.support import key, query

SCRIPTS = {
    "V1__create_users.sql": "create table users (id int, name varchar(50));",
    "V2__seed_users.sql": "insert into users values (1, 'ann'), (2, 'bob');",
}


@pytest.fixture
def project(tmp_path, monkeypatch, scripts, dbops_home):
    """A project folder as the working directory, with DAGSTER_HOME unset (the default applies)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dbops").symlink_to(dbops_home)
    monkeypatch.setenv("DAGSTER_HOME", "unset")
    monkeypatch.delenv("DAGSTER_HOME")
    for name in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_LOCATIONS", "DBOPS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    scripts(SCRIPTS)
    return tmp_path


def runs(project_dir):
    home = project_dir / ".dbops" / "dagster_home"
    with DagsterInstance.from_config(str(home)) as instance:
        return [(r, instance.get_latest_materialization_event(key("v2__seed_users"))) for r in instance.get_runs()]


def test_migrate_is_one_dagster_run_with_tags_and_the_direct_summary(project, pg_url, capsys):
    code = main(["--url", pg_url, "migrate", "--commit", "abc123", "--author", "Ann", "--message", "Add users"])
    out = capsys.readouterr().out
    assert code == 0
    assert "applied sql/V1__create_users.sql (1 statements" in out
    assert "Applied 2 migration(s)" in out
    home = project / ".dbops" / "dagster_home"
    assert "enabled: false" in (home / "dagster.yaml").read_text()
    [(run, latest)] = runs(project)
    assert f"Dagster run: {run.run_id}" in out
    assert run.job_name == "migrate"
    process = run.tags["dbops/process"]  # pid:start time, so a later run can tell it is gone
    assert process.split(":")[0].isdigit() and run.tags["dbops/host"] == socket.gethostname()
    assert {k: v for k, v in run.tags.items() if k.startswith("dbops/")} == {
        "dbops/host": socket.gethostname(),
        "dbops/process": process,
        "dbops/source": "cli",
        "dbops/commit": "abc123",
        "dbops/author": "Ann",
        "dbops/message": "Add users",
        "dbops/target": pg_url,
    }
    assert latest.run_id == run.run_id
    assert query(pg_url, "select run_id, commit_id from dbops_audit") == [(run.run_id, "abc123")] * 2

    assert main(["--url", pg_url, "migrate"]) == 0
    out = capsys.readouterr().out
    assert "Nothing to migrate" in out
    second = runs(project)
    assert len(second) == 1  # nothing pending: no empty run is started
    assert second[0][1].run_id == run.run_id  # and no materialization added


def test_json_output_names_the_run(project, pg_url, capsys):
    assert main(["--url", pg_url, "--json", "migrate"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [a["script"] for a in document["applied"]] == ["V1__create_users.sql", "V2__seed_users.sql"]
    assert document["run_id"] == runs(project)[0][0].run_id


def test_no_password_in_tags_run_config_metadata_or_output(project, pg_server, capsys, monkeypatch):
    secret = "s3cret-pw"
    url = f"postgresql://postgres:{secret}@/{pg_server.create_database()}?host={pg_server.socket_dir}"
    monkeypatch.setenv("DBOPS_PASSWORD", "other-secret")
    assert main(["--url", url, "migrate"]) == 0
    captured = capsys.readouterr()
    [(run, latest)] = runs(project)
    stored = json.dumps([run.tags, run.run_config, str(latest.dagster_event.event_specific_data.materialization.metadata)])
    assert secret not in stored + captured.out + captured.err
    assert "other-secret" not in stored
    assert run.tags["dbops/target"].startswith("postgresql://postgres:***@")
    assert run.run_config["resources"]["dbops"]["config"]["url"] == {"env": "DBOPS_URL"}


def test_a_failing_script_gives_the_engine_message_and_exit_code(project, pg_url, scripts, capsys):
    scripts({"V3__broken.sql": "select * from no_such_table;"})
    assert main(["--url", pg_url, "migrate"]) == 1
    err = capsys.readouterr().err
    assert "error: sql/V3__broken.sql:1: migration V3 (broken) failed" in err and "no_such_table" in err
    [(run, _)] = runs(project)
    assert f"Dagster run: {run.run_id} (failed)" in err
    assert query(pg_url, "select script, status from dbops_audit order by started_at")[-1] == ("V3__broken.sql", "failed")


def test_an_edited_applied_script_stops_the_run_with_exit_1(project, pg_url, scripts, capsys):
    assert main(["--url", pg_url, "migrate"]) == 0
    scripts({"V1__create_users.sql": SCRIPTS["V1__create_users.sql"] + " -- edited"})
    assert main(["--url", pg_url, "migrate"]) == 1
    assert "V1__create_users.sql: checksum mismatch for version 1" in capsys.readouterr().err


def test_an_unreachable_database_exits_3_before_any_run(project, capsys):
    assert main(["--url", "postgresql://nobody@127.0.0.1:1/db?connect_timeout=2", "migrate"]) == 3
    assert "cannot connect" in capsys.readouterr().err


def test_the_local_instance_is_dagster_postgres_on_the_embedded_server(project, pg_url, capsys, monkeypatch):
    """`dbops local start` prepares DAGSTER_HOME; `dagster dev` with it (DagsterInstance.get) sees dbops's runs."""
    from dagster_postgres import PostgresEventLogStorage

    assert main(["local", "start"]) == 0
    home = (project / ".dbops" / "dagster_home").resolve()
    assert f"Dagster instance: {home}" in capsys.readouterr().out
    assert main(["--url", pg_url, "migrate"]) == 0
    [(run, _)] = runs(project)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert [r.run_id for r in instance.get_runs()] == [run.run_id]
        assert instance.get_latest_materialization_event(key("v1__create_users")).run_id == run.run_id
    socket_dir = EmbeddedDatabase(project / ".dbops" / "pgdata").running_socket_dir()
    assert query(f"postgresql://postgres@/dagster?host={socket_dir}", "select run_id from runs") == [(run.run_id,)]


def test_a_dagster_yaml_of_your_own_is_left_as_it_is(project, pg_url, pg_server, monkeypatch):
    home = project / "own_home"
    home.mkdir()
    own = f"storage:\n  postgres:\n    postgres_url: {pg_server.url(pg_server.create_database('own'))}\ntelemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(own)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["--url", pg_url, "migrate"]) == 0
    assert (home / "dagster.yaml").read_text() == own
    assert not (project / ".dbops" / "pgdata").exists()  # no embedded server was needed


def test_two_migrates_started_together_on_a_new_instance_both_finish(project, pg_url):
    """Concurrent first use of a new DAGSTER_HOME: one applies, the other waits for the run lock; storage stays usable."""
    env = {**os.environ, "DBOPS_URL": pg_url}
    command = [sys.executable, "-m", "dbops.cli", "migrate"]
    processes = [subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outcomes = [(p.wait(timeout=180), *p.communicate()) for p in processes]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    assert [row[0] for row in query(pg_url, 'select "version" from flyway_schema_history order by installed_rank')] == ["1", "2"]
    assert main(["--url", pg_url, "info"]) == 0
    assert len(runs(project)) in (1, 2)  # the second started a run only if it looked before the first applied


def test_ui_starts_dagster_dev_on_localhost_with_the_command_line_settings(project, monkeypatch, capsys):
    seen = {}

    def call(command):
        seen["command"] = command
        seen["env"] = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DBOPS_URL", "DBOPS_LOCATIONS")}
        return 0

    monkeypatch.setattr(subprocess, "call", call)
    (project / "workspace.yaml").write_text("load_from: []\n")
    assert main(["--url", "postgresql://u:pw@127.0.0.1/db", "--locations", "sql", "ui"]) == 0
    assert seen["command"][-7:] == ["dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3000"]
    assert seen["env"] == {
        "DAGSTER_HOME": str((project / ".dbops" / "dagster_home").resolve()),
        "DBOPS_URL": "postgresql://u:pw@127.0.0.1/db",
        "DBOPS_LOCATIONS": "sql",
    }
    assert "http://127.0.0.1:3000" in capsys.readouterr().out
    assert "DBOPS_URL" not in os.environ


def test_target_and_timeouts_reach_the_job_as_run_config(project, pg_url, capsys):
    assert main(["--url", pg_url, "migrate", "--target", "1", "--lock-timeout", "7", "--statement-timeout", "30"]) == 0
    assert "Applied 1 migration(s)" in capsys.readouterr().out
    [(run, _)] = runs(project)
    config = run.run_config["resources"]["dbops"]["config"]
    assert (config["target_version"], config["lock_timeout"], config["statement_timeout"]) == ("1", 7.0, 30.0)
    assert query(pg_url, 'select "version" from flyway_schema_history') == [("1",)]


def own_instance(project: Path, url: str) -> Path:
    home = project / "own_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f'storage:\n  postgres:\n    postgres_url: "{url}"\ntelemetry:\n  enabled: false\n')
    return home


def test_an_unreachable_storage_is_one_error_line_exit_3_and_nothing_applied(project, pg_url, monkeypatch, capsys):
    home = own_instance(project, "postgresql://dagster:storage-secret@127.0.0.1:1/dagster?connect_timeout=1")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["--url", pg_url, "migrate"]) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the Dagster storage of the instance in "), err
    assert str(home / "dagster.yaml") in err and "nothing was applied" in err and "--direct" in err
    assert "storage-secret" not in err and "Traceback" not in err
    assert query(pg_url, "select count(*) from information_schema.tables where table_name = 'flyway_schema_history'") == [(0,)]


def test_a_storage_server_that_does_not_exist_is_one_error_line_with_its_cause(project, pg_url, tmp_path):
    """As a user runs it (a process of its own, Python's logging set up by dbops): dagster-postgres's retry warnings
    stay off the terminal, and the error line says why the storage cannot be used."""
    home = own_instance(project, f"postgresql://dagster:storage-secret@/dagster?host={tmp_path / 'no_server_here'}")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "dbops.cli", "--url", pg_url, "migrate"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the Dagster storage of the instance in "), done.stderr
    assert str(home / "dagster.yaml") in lines[0]
    assert "no_server_here" in lines[0] and "No such file or directory" in lines[0]  # the cause, not only "too many retries"
    assert "storage-secret" not in done.stderr and "Retrying" not in done.stderr and "Traceback" not in done.stderr


def test_only_dagster_postgres_s_retry_warnings_are_kept_off_the_terminal(caplog):
    import logging

    import sqlalchemy.exc
    from dagster_postgres.utils import DagsterPostgresException, retry_pg_connection_fn

    from dbops.orchestration.instance import quiet_dagster

    def refused() -> None:
        raise sqlalchemy.exc.OperationalError("connect", {}, Exception("connection refused"))

    with caplog.at_level(logging.WARNING), quiet_dagster(verbose=False):
        with pytest.raises(DagsterPostgresException):
            retry_pg_connection_fn(refused, retry_limit=1, retry_wait=0.01)
        logging.warning("Retrying failed database connection: said by something else")
        logging.getLogger("dagster").error("a real error")
    assert [r.getMessage() for r in caplog.records] == ["Retrying failed database connection: said by something else", "a real error"]


BAD_INSTANCE_CONFIGS = {
    "bad YAML": ("storage: [\n  postgres: {\n", ["dagster.yaml:3:1: not valid YAML", "fix the YAML there"]),
    "unknown storage module": ("storage:\n  custom:\n    module: no_such_mod\n    class: Foo\n    config: {}\n",
                               ["no_such_mod", "install the package that provides it"]),
    # Dagster's check of the class raises dagster_shared.check.CheckError, which instance.py classifies: this case breaks
    # if Dagster raises something else for it.
    "storage class that is not in its module": ("storage:\n  custom:\n    module: dbops.orchestration.instance\n    class: NoSuchStorage\n"
                                                 "    config: {}\n", ["NoSuchStorage", "fix it there"]),
    "unknown key": ("storage:\n  postgres:\n    nonsense: 1\n", ['unexpected config entry "nonsense" at path root:storage:postgres', "fix it there"]),
    "storage URL that does not parse": ("storage:\n  postgres:\n    postgres_url: 'not a url'\n", ["Could not parse SQLAlchemy URL", "fix it there"]),
}


@pytest.mark.parametrize("kind", sorted(BAD_INSTANCE_CONFIGS))
def test_a_dagster_yaml_dagster_cannot_use_is_a_configuration_error_naming_where(project, pg_url, monkeypatch, capsys, kind):
    text, expected = BAD_INSTANCE_CONFIGS[kind]
    home = project / "own_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["--url", pg_url, "migrate"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {home / 'dagster.yaml'}"), err
    assert all(part in lines[0] for part in expected), err
    assert "reachable" not in err and "--direct" not in err and "Traceback" not in err  # not the storage-outage advice
    assert query(pg_url, "select count(*) from information_schema.tables where table_name = 'flyway_schema_history'") == [(0,)]


def bad_home(project: Path, kind: str) -> tuple[str, str]:
    """A DAGSTER_HOME that cannot be used, and the path its error must name."""
    if kind == "a file":
        (project / "afile").write_text("")
        return str(project / "afile"), str(project / "afile")
    if kind == "under a file":
        (project / "afile").write_text("")
        return str(project / "afile" / "home"), str(project / "afile" / "home")
    if kind == "unwritable":
        return "/sys/dbops_dagster_home", "/sys/dbops_dagster_home"
    home = project / "home"
    home.mkdir()
    if kind == "dagster.yaml a folder":
        (home / "dagster.yaml").mkdir()
    else:
        (home / "dagster.yaml").write_bytes(b"telemetry:\n  enabled: false # caf\xe9\n")
    return str(home), str(home / "dagster.yaml")


@pytest.mark.parametrize("kind", ["a file", "under a file", "unwritable", "dagster.yaml a folder", "dagster.yaml not UTF-8"])
def test_a_dagster_home_that_cannot_be_used_is_one_error_line_exit_2(project, pg_url, monkeypatch, capsys, kind):
    home, named = bad_home(project, kind)
    if kind == "unwritable" and os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("/sys is writable here")
    monkeypatch.setenv("DAGSTER_HOME", home)
    assert main(["--url", pg_url, "migrate"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], err
    assert any(fix in lines[0] for fix in ("set DAGSTER_HOME to a folder you can write", "remove it", "save it as UTF-8"))
    assert "Traceback" not in err
    assert query(pg_url, "select count(*) from information_schema.tables where table_name = 'flyway_schema_history'") == [(0,)]


def test_a_storage_that_fails_mid_run_is_exit_3_and_the_next_run_records_what_was_applied(project, pg_server, pg_url, scripts, monkeypatch):
    from dagster import DagsterRunStatus

    from tests.reliability.harness import Dbops, dbops

    storage_db = pg_server.create_database("storage")
    home = own_instance(project, pg_server.url(storage_db))
    scripts({"V3__slow.sql": "select pg_sleep(4);"})
    env = {"DAGSTER_HOME": str(home)}
    with Dbops(pg_url, project / "sql", "migrate", env=env) as victim:
        def sleeping() -> bool:
            return bool(query(pg_url, "select 1 from pg_stat_activity where wait_event = 'PgSleep'"))

        deadline = time.monotonic() + 120
        while not sleeping():
            assert victim.running() and time.monotonic() < deadline, (victim.stdout, victim.stderr)
            time.sleep(0.05)
        with pg_server.admin() as admin:
            admin.execute(f'alter database "{storage_db}" allow_connections false')
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (storage_db,))
        code, _, err = victim.finish(180)
    assert code == 3, err
    assert "Traceback" not in err
    assert "error: the Dagster storage of the instance in" in err and "failed during the run" in err
    assert [r[0] for r in query(pg_url, 'select "version" from flyway_schema_history order by installed_rank')] == ["1", "2", "3"]

    with pg_server.admin() as admin:
        admin.execute(f'alter database "{storage_db}" allow_connections true')
    code, out, err = dbops(pg_url, project / "sql", "migrate", env=env)
    assert code == 0, err
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert {r.status for r in instance.get_runs()} <= {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}
        for name in ("v1__create_users", "v2__seed_users", "v3__slow"):
            [record] = instance.fetch_materializations(key(name), limit=5).records
            assert record.asset_materialization.metadata["recorded_late"].value is True


def test_scripts_applied_with_direct_are_recorded_late_once_and_not_reported_as_applied(project, pg_url, capsys):
    assert main(["--url", pg_url, "migrate", "--direct", "--commit", "d1rect"]) == 0
    direct_run = query(pg_url, "select distinct run_id from dbops_audit")[0][0]
    capsys.readouterr()
    assert main(["--url", pg_url, "migrate"]) == 0
    captured = capsys.readouterr()
    assert "applied sql/" not in captured.out and "Nothing to migrate" in captured.out
    assert "recorded 2 materialization(s) late" in captured.err
    [(run, latest)] = runs(project)
    metadata = latest.asset_materialization.metadata
    assert latest.run_id == run.run_id and metadata["recorded_late"].value is True
    assert metadata["applied_in_run"].value == direct_run and metadata["commit"].value == "d1rect"
    assert main(["--url", pg_url, "migrate"]) == 0  # everything recorded: no further run
    assert "Nothing to migrate" in capsys.readouterr().out and len(runs(project)) == 1


@pytest.mark.parametrize("name", ["straße", "ıd"])  # upper() then lower() gives another name: strasse, id
def test_placeholder_names_are_kept_exactly_on_the_dagster_path(project, pg_url, scripts, capsys, monkeypatch, name):
    scripts({"V3__note.sql": f"create table note (v varchar(20));\ninsert into note values ('${{{name}}}');"})
    assert main(["--url", pg_url, "migrate"]) == 2
    err = capsys.readouterr().err
    variable = f"DBOPS_PLACEHOLDER_{name}"
    assert f"no value for placeholder ${{{name}}}" in err and f"or set {variable}" in err
    assert main(["--url", pg_url, "--placeholder", f"{name}=from-flag", "migrate"]) == 0, capsys.readouterr().err
    assert query(pg_url, "select v from note") == [("from-flag",)]
    [(run, _)] = runs(project)
    assert run.run_config["resources"]["dbops"]["config"]["placeholders"] == {name: "from-flag"}

    monkeypatch.setenv(variable, "from-env")  # the variable the message names works too
    scripts({"V4__again.sql": f"insert into note values ('${{{name}}}');"})
    assert main(["--url", pg_url, "migrate"]) == 0, capsys.readouterr().err
    assert query(pg_url, "select v from note order by v") == [("from-env",), ("from-flag",)]


def storage_sessions(pg_server, database: str) -> int:
    """Sessions ever established to `database` (PostgreSQL's cumulative statistics)."""
    with pg_server.admin() as admin:
        admin.execute("select pg_stat_clear_snapshot()")
        return admin.execute("select sessions from pg_stat_database where datname = %s", (database,)).fetchone()[0]


def test_a_run_holds_its_storage_connections_instead_of_one_per_event(project, pg_server, pg_url, scripts):
    """dagster-postgres connects anew for every read and write unless told the process is long-lived;
    a run of 30 scripts stores ~100 events (30 planned before the step starts), each a connection or two."""
    from tests.reliability.harness import dbops

    storage_db = pg_server.create_database("storage")
    home = own_instance(project, pg_server.url(storage_db))
    scripts({f"V{n}__step.sql": f"create table t{n} (id int);" for n in range(3, 31)})
    code, out, err = dbops(pg_url, project / "sql", "migrate", env={"DAGSTER_HOME": str(home)})
    assert code == 0, err
    assert "Applied 30 migration(s)" in out
    before = storage_sessions(pg_server, storage_db)
    code, out, err = dbops(pg_url, project / "sql", "migrate", env={"DAGSTER_HOME": str(home)})
    assert code == 0 and "Nothing to migrate" in out, err
    noop = storage_sessions(pg_server, storage_db) - before
    scripts({f"V{n}__more.sql": f"create table u{n} (id int);" for n in range(31, 61)})
    before = storage_sessions(pg_server, storage_db)
    code, out, err = dbops(pg_url, project / "sql", "migrate", env={"DAGSTER_HOME": str(home)})
    assert code == 0 and "Applied 30 migration(s)" in out, err
    run = storage_sessions(pg_server, storage_db) - before
    assert run <= noop + 5, f"a run of 30 scripts opened {run} storage sessions, a no-op {noop}"


def test_an_unexpected_error_in_the_migrate_step_reaches_the_user_with_its_cause(project, pg_url, capsys, monkeypatch):
    """Not a DbopsError (a bug, say): the line names the innermost cause, not Dagster's wrapper around the step."""
    from dbops.engine.engine import LockedRun

    def broken(self, *args, **kwargs):
        raise RuntimeError("the disk is on fire")
        yield

    monkeypatch.setattr(LockedRun, "apply", broken)
    assert main(["--url", pg_url, "migrate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the migrate step failed: RuntimeError: the disk is on fire"), err
    assert "DagsterExecutionStepExecutionError" not in err and 'executing op "migrations"' not in err


def test_the_dagster_path_reads_each_script_once_and_its_run_applies_what_the_command_line_planned(project, pg_url, monkeypatch):
    """The command line, the definitions it builds and the run's step share one read of the files: a big script is
    held once (bench/big_scripts.py), and a file changed while the run starts cannot make the step apply other SQL."""
    reads: dict[str, int] = {}
    read_bytes = Path.read_bytes

    def counted(self: Path) -> bytes:
        if self.suffix == ".sql":
            reads[self.name] = reads.get(self.name, 0) + 1
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counted)
    assert main(["--url", pg_url, "migrate"]) == 0
    assert reads == {name: 1 for name in SCRIPTS}
    assert query(pg_url, "select count(*) from users") == [(2,)]
