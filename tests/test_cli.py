"""The `dbops` command: exit codes, messages, --json documents, no secrets."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import psycopg
import pytest

from dbops.cli import main
from dbops.scripts.migrations import checksum


@pytest.fixture
def run(monkeypatch, capsys):
    """Run `dbops ARGS` in-process with DBOPS_URL/DBOPS_LOCATIONS; returns (exit code, stdout, stderr)."""

    def invoke(url: str, folder: Path | None, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("DBOPS_URL", url)
        if folder is not None:
            monkeypatch.setenv("DBOPS_LOCATIONS", str(folder))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_migrate_then_rerun_says_nothing_to_do(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);", "V2__b.sql": "create table b (id int);"})
    code, out, _ = run(pg_url, folder, "migrate", "--direct")
    assert code == 0
    assert "V1__a.sql" in out and "V2__b.sql" in out and "Applied 2 migration(s)" in out
    code, out, _ = run(pg_url, folder, "migrate", "--direct")
    assert code == 0 and "Nothing to migrate" in out


def test_info_json_document(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);", "V2__b.sql": "select 1;"})
    run(pg_url, folder, "migrate", "--direct", "--target", "1")
    code, out, err = run(pg_url, folder, "info", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["target"] == pg_url
    first, second = document["migrations"]
    assert set(first) >= {"version", "description", "type", "script", "checksum", "state", "installed_rank", "installed_on", "execution_time_ms"}
    assert (first["version"], first["state"], first["installed_rank"], first["checksum"]) == ("1", "Success", 1, checksum("create table a (id int);"))
    assert (second["version"], second["state"], second["installed_rank"]) == ("2", "Pending", None)


def test_global_flags_work_after_the_command(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "select 1;"})
    code, out, _ = run(pg_url, None, "info", "--locations", str(folder), "--json")
    assert code == 0 and json.loads(out)["migrations"][0]["script"] == "V1__a.sql"


def test_validate_exit_1_names_file_and_checksums(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    run(pg_url, folder, "migrate", "--direct")
    (folder / "V1__a.sql").write_text("create table a (id bigint);")
    code, out, _ = run(pg_url, folder, "validate")
    assert code == 1
    assert "V1__a.sql" in out
    assert str(checksum("create table a (id int);")) in out and str(checksum("create table a (id bigint);")) in out


def test_failed_migration_exit_1_names_file_statement_and_error(pg_url, scripts, run) -> None:
    folder = scripts({"V1__ok.sql": "create table a (id int);", "V2__bad.sql": "create table b (id int);\nselect * from missing;"})
    code, out, err = run(pg_url, folder, "migrate", "--direct")
    assert code == 1
    assert "V2__bad.sql:2" in err and "select * from missing" in err and 'relation "missing" does not exist' in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("files", "names"),
    [
        ({"V1__ok.sql": "select 1;", "v2__lower.sql": "select 2;"}, ["v2__lower.sql"]),
        ({"V1__a.sql": "select 1;", "V1.0__b.sql": "select 2;"}, ["V1__a.sql", "V1.0__b.sql"]),
        ({"V1__a.sql": "select 1;\nselect '${undefined}';"}, ["V1__a.sql:2", "${undefined}"]),
        ({"V1__a.sql": b"select '\xff\xfe';"}, ["V1__a.sql", "utf-8"]),
    ],
    ids=["invalid-name", "duplicate", "placeholder", "encoding"],
)
def test_bad_input_exit_2_names_the_file(pg_url, scripts, run, files, names) -> None:
    folder = scripts(files)
    code, out, err = run(pg_url, folder, "migrate", "--direct")
    assert code == 2
    for name in names:
        assert name in err
    assert "Traceback" not in err
    code, out, _ = run(pg_url, folder, "info", "--json", "--ignore-invalid-names") if "lower" in names[0] else (None, None, None)
    if code is not None:
        assert code == 0 and [m["script"] for m in json.loads(out)["migrations"]] == ["V1__ok.sql"]


def test_bad_flag_exit_2(run, pg_url) -> None:
    code, _, err = run(pg_url, None, "migrate", "--lock-timeout", "soon")
    assert code == 2 and "lock-timeout" in err


@pytest.mark.parametrize("flag", ["--statement-timeout", "--lock-timeout"])
@pytest.mark.parametrize(("value", "problem"), [
    ("nan", "must be a number of seconds"), ("inf", "is more than 2147483.647 seconds"), ("1e12", "is more than 2147483.647 seconds"),
    ("2147483.648", "is more than"), ("-1", "must be a number of seconds, 0 or more"),
])
def test_a_timeout_postgresql_cannot_hold_is_exit_2_naming_the_flag(run, pg_url, scripts, flag, value, problem) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    code, out, err = run(pg_url + "&lock=table", folder, "migrate", "--direct", flag, value)
    assert code == 2 and f"error: argument {flag}: '{value}' {problem}" in err and "Traceback" not in err
    code, out, _ = run(pg_url, folder, "--json", "info")
    assert [m["state"] for m in json.loads(out)["migrations"]] == ["Pending"]


def test_the_longest_timeouts_postgresql_takes_are_used(run, pg_url, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    code, _, err = run(pg_url + "&lock=table", folder, "migrate", "--direct", "--statement-timeout", "2147483.647", "--lock-timeout", "2147483.647")
    assert code == 0, err
    code, _, err = run(pg_url, folder, "migrate", "--direct", "--statement-timeout", "0.0001")
    assert code == 2 and "'0.0001' is under 1 ms" in err


def test_unreachable_database_exit_3_without_password(run, tmp_path) -> None:
    url = f"postgresql://deployer:s3cr3t-pw@/nowhere?host={tmp_path}&connect_timeout=2"
    (tmp_path / "sql").mkdir()
    code, out, err = run(url, tmp_path / "sql", "info")
    assert code == 3
    assert "cannot connect" in err and "deployer:***@" in err
    assert "s3cr3t-pw" not in out + err


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("host=/tmp/x user=postgres password=s3cr3tpw dbname=x", "password=*** dbname=x: use postgresql://"),
        ("host=/tmp/x password='s3cr3t pw' dbname=x", "password=*** dbname=x: use postgresql://"),
        ("jdbc:postgresql://localhost:5432/x?user=postgres&password=s3cr3tpw", "password=***: use postgresql://"),
    ],
)
def test_an_unsupported_url_is_exit_2_with_its_hint_and_without_its_password(run, tmp_path, url, hint) -> None:
    code, out, err = run(url, tmp_path, "info")
    assert code == 2 and err.startswith("error: unsupported URL") and hint in err
    assert "s3cr3t" not in out + err


def test_a_password_in_the_query_hides_neither_the_cause_nor_the_rest_of_the_url(run, pg_server, tmp_path) -> None:
    url = f"postgresql://postgres@/no_such_db?host={pg_server.socket_dir}&password=s3cr3tpw&connect_timeout=2"
    code, out, err = run(url, tmp_path, "--json", "info")
    error = json.loads(out)["error"]
    assert code == 3 and "password=***&connect_timeout=2: " in error and 'database "no_such_db" does not exist' in error
    assert "s3cr3tpw" not in out + err


@pytest.mark.parametrize("table", ["dbops_audit", "DBOPS_AUDIT", "dbops_lock", "dbops_lease"])
def test_a_history_table_named_as_one_of_dbopss_own_is_refused_before_anything_is_created(run, pg_url, scripts, table) -> None:
    import psycopg

    folder = scripts({"V1__a.sql": "create table a (id int);"})
    code, _, err = run(pg_url, folder, "--table", table, "migrate", "--direct")
    assert code == 2 and f"error: history table '{table}' is the name of dbops's" in err and "--table" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select table_name from information_schema.tables where table_schema = 'public'").fetchall() == []
    code, _, err = run(pg_url, folder, "migrate", "--direct")
    assert code == 0, err


def test_password_from_environment_never_printed(pg_url, scripts, run, monkeypatch) -> None:
    monkeypatch.setenv("DBOPS_PASSWORD", "hunter2-secret")
    folder = scripts({"V1__a.sql": "select 1;"})
    outputs = []
    for args in (["migrate", "--direct", "--json"], ["info", "--json"], ["validate"], ["info"]):
        code, out, err = run(pg_url, folder, *args)
        assert code == 0
        outputs.append(out + err)
    assert not any("hunter2-secret" in text for text in outputs)


def test_dry_run_prints_sql_and_changes_nothing(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table ${name} (id int);"})
    code, out, _ = run(pg_url, folder, "--placeholder", "name=orders", "migrate", "--dry-run")
    assert code == 0 and "create table orders (id int);" in out and "nothing was changed" in out
    code, out, _ = run(pg_url, folder, "info", "--json", "--placeholder", "name=orders")
    assert [m["state"] for m in json.loads(out)["migrations"]] == ["Pending"]


def test_json_output_is_one_document_and_logs_go_to_stderr(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    code, out, err = run(pg_url, folder, "migrate", "--direct", "--json")
    document = json.loads(out)
    assert code == 0 and [a["script"] for a in document["applied"]] == ["V1__a.sql"]
    assert document["applied"][0]["statements"] == 1


def test_repair_and_baseline_commands(pg_url, scripts, run) -> None:
    folder = scripts({"V1__old.sql": "select 1;", "V2__new.sql": "create table n (id int);"})
    assert run(pg_url, folder, "baseline", "--version", "1")[0] == 0
    code, out, _ = run(pg_url, folder, "migrate", "--direct", "--json")
    assert [a["script"] for a in json.loads(out)["applied"]] == ["V2__new.sql"]
    code, out, _ = run(pg_url, folder, "repair")
    assert code == 0 and "nothing to do" in out


def test_a_renamed_applied_script_is_explained_and_repair_says_it_records_the_new_description(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    assert run(pg_url, folder, "migrate", "--direct")[0] == 0
    (folder / "V1__a.sql").rename(folder / "V1__renamed.sql")
    code, out, err = run(pg_url, folder, "validate")
    assert code == 1
    assert "description mismatch for version 1: applied 'a', file 'renamed'; rename the file back, or run `dbops repair`" in out + err
    code, out, _ = run(pg_url, folder, "repair")
    assert code == 0
    assert "realigned" in out and "description 'a' -> 'renamed'" in out and "checksum" not in out, out
    assert run(pg_url, folder, "validate")[0] == 0


def test_an_applied_row_without_a_checksum_is_named_so_in_the_mismatch(pg_url, scripts, run) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    assert run(pg_url, folder, "migrate", "--direct")[0] == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("update flyway_schema_history set checksum = null")
    code, out, err = run(pg_url, folder, "validate")
    assert code == 1 and "applied none (NULL), file now" in out + err and "None" not in out + err


def test_local_database_lifecycle(tmp_path) -> None:
    env = {**os.environ, "DBOPS_HOME": str(tmp_path / "home")}
    env.pop("DBOPS_URL", None)

    def dbops(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dbops.cli", *args], env=env, capture_output=True, text=True, cwd=tmp_path)

    try:
        assert "stopped" in dbops("local", "status").stdout
        started = dbops("local", "start")
        assert started.returncode == 0 and "running" in started.stdout
        url = dbops("local", "url").stdout.strip()
        assert url.startswith("postgresql://postgres@/warehouse?host=")
        (tmp_path / "sql").mkdir()
        (tmp_path / "sql" / "V1__a.sql").write_text("create table a (id int);")
        assert dbops("migrate", "--direct").returncode == 0
        info = json.loads(dbops("info", "--json").stdout)
        assert [m["state"] for m in info["migrations"]] == ["Success"]
    finally:
        assert "stopped" in dbops("local", "stop").stdout
    assert "stopped" in dbops("local", "status").stdout


def test_an_embedded_server_that_does_not_stop_in_time_is_an_error_line(tmp_path, monkeypatch, capsys) -> None:
    """pg_ctl stop -w gives up while a loaded machine's shutdown checkpoint runs: no traceback, say to try again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning, as dbops imports it
        import pgserver

    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "home"))
    assert main(["local", "start"]) == 0
    real = pgserver.pg_ctl

    def gives_up(args, **kwargs):
        if "stop" in args:
            raise subprocess.CalledProcessError(1, ["pg_ctl", *args], "", "pg_ctl: server does not shut down")
        return real(args, **kwargs)

    try:
        monkeypatch.setattr(pgserver, "pg_ctl", gives_up)
        capsys.readouterr()
        assert main(["local", "stop"]) == 3
        err = capsys.readouterr().err
        assert "did not stop within 120 s" in err and "dbops local stop" in err and "Traceback" not in err, err
    finally:
        monkeypatch.setattr(pgserver, "pg_ctl", real)
        assert main(["local", "stop"]) == 0
    assert "stopped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, flag",
    [
        (("undo", "--target", "abc"), "--target 'abc'"),
        (("migrate", "--direct", "--target", "1.x"), "--target '1.x'"),
        (("baseline", "--version", "v-1"), "--version 'v-1'"),
    ],
)
def test_a_version_flag_that_is_not_a_version_is_bad_input(pg_url, scripts, run, args, flag) -> None:
    folder = scripts({"V1__a.sql": "create table bad_flag_a (id int);"})
    code, out, err = run(pg_url, folder, *args)
    assert code == 2, err
    assert f"error: {flag}: not a version" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "args, code_expected",
    [
        (("info", "--json", "--table", "t", "--locations", "/nowhere/at/all"), 2),
        (("undo", "--json", "--target", "abc"), 2),
        (("--json", "no-such-command"), 2),
    ],
)
def test_json_failure_prints_one_json_document(pg_url, run, args, code_expected) -> None:
    code, out, err = run(pg_url, None, *args)
    assert code == code_expected
    document = json.loads(out)
    assert document["exit_code"] == code_expected
    assert document["error"] and document["error"] in err


def test_json_failed_migration_names_the_file_in_the_document(pg_url, scripts, run) -> None:
    folder = scripts({"V1__ok.sql": "create table json_fail_ok (id int);", "V2__bad.sql": "select * from json_fail_missing;"})
    code, out, err = run(pg_url, folder, "migrate", "--direct", "--json")
    assert code == 1
    document = json.loads(out)
    assert document["exit_code"] == 1 and "V2__bad.sql" in document["error"]


def test_info_and_validate_need_no_placeholder_values_as_in_flyway(pg_url, scripts, run, monkeypatch) -> None:
    monkeypatch.delenv("DBOPS_PLACEHOLDER_OWNER", raising=False)
    folder = scripts({
        "V1__grants.sql": "create table deploy_time_ph (id int);\ngrant select on deploy_time_ph to ${owner};",
        "R__view.sql": "create or replace view deploy_time_ph_v as select * from deploy_time_ph; -- ${owner}",
    })
    run(pg_url, folder, "migrate", "--direct", "--placeholder", "owner=current_user")
    code, out, err = run(pg_url, folder, "info", "--json")
    assert code == 0, err
    assert [(m["script"], m["state"]) for m in json.loads(out)["migrations"]][0] == ("V1__grants.sql", "Success")
    code, out, err = run(pg_url, folder, "validate")
    assert code == 0 and "OK" in out, err
    code, _, err = run(pg_url, folder, "migrate", "--dry-run")
    assert code == 2 and "no value for placeholder ${owner}" in err  # running needs the value


def test_readme_lists_the_keys_info_json_prints(pg_url, scripts, run) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    documented = re.search(r"`info --json` gives\n`\{\"migrations\": \[\{(.*?)\}\], (.*?)\}`", readme, re.S)
    record_keys = re.findall(r'"(\w+)"', documented.group(1))
    top_keys = re.findall(r'"(\w+)"', documented.group(2))
    folder = scripts({"V1__a.sql": "create table readme_keys (id int);"})
    run(pg_url, folder, "migrate", "--direct")
    code, out, _ = run(pg_url, folder, "info", "--json")
    document = json.loads(out)
    assert code == 0 and list(document) == ["migrations", *top_keys]
    assert list(document["migrations"][0]) == record_keys


def test_output_piped_into_a_reader_that_stops_early_ends_without_a_traceback(tmp_path, pg_url) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    for n in range(1, 3001):  # far more lines than a pipe holds: dbops is still writing when the reader goes
        (folder / f"V{n}__step_{n}.sql").write_text(f"create table t{n} (id int);\n")
    process = subprocess.Popen([sys.executable, "-m", "dbops.cli", "--url", pg_url, "--locations", str(folder), "info"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(60) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def history_rows(url: str) -> list[tuple]:
    """(version, script, success) of flyway_schema_history, or [] when dbops never created it."""
    import psycopg

    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('flyway_schema_history')").fetchone()[0] is None:
            return []
        return conn.execute("select version, script, success from flyway_schema_history order by installed_rank").fetchall()


COPY_THROUGH_THE_CLIENT = {
    "to-stdout": ("create table b(id int);\ncopy (select 1) to stdout;\n", "V2__copy.sql:2:", "COPY TO STDOUT"),
    "from-stdin": ("create table b(id int, name text);\ncopy b (id, name) from stdin;\n1\tada\n2\tgrace\n\\.\n",
                   "V2__copy.sql:2:", "COPY FROM STDIN"),
}


@pytest.mark.parametrize("case", COPY_THROUGH_THE_CLIENT, ids=list(COPY_THROUGH_THE_CLIENT))
def test_copy_through_the_client_is_refused_before_anything_is_applied(pg_url, scripts, run, case) -> None:
    """It crashed with psycopg's traceback (exit 1, empty --json) after the batch's COMMIT recorded V1-V3 as Success."""
    sql, where, kind = COPY_THROUGH_THE_CLIENT[case]
    folder = scripts({"V1__a.sql": "create table a(id int);", "V2__copy.sql": sql, "V3__c.sql": "create table c(id int);"})
    code, out, err = run(pg_url, folder, "--json", "migrate", "--direct")
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"error: {folder}/{where} {kind} streams data through the client")
    assert "INSERT" in err and "s3://" in err and json.loads(out)["exit_code"] == 2
    assert history_rows(pg_url) == []
    code, _, err = run(pg_url, folder, "migrate", "--dry-run")
    assert code == 2 and where in err


def test_copy_from_a_file_the_server_reads_is_not_refused(pg_url, scripts, run) -> None:
    folder = scripts({"V1__load.sql": "create table t(id int);\ncopy t from 's3://bucket/t.csv' iam_role 'arn:aws:iam::1:role/r';\n"
                                      "copy t from '/server/t.csv';\ncopy t to '/server/out.csv';\n"})
    code, out, err = run(pg_url, folder, "migrate", "--dry-run")
    assert code == 0, err


@pytest.mark.parametrize(
    ("copy", "failure"),
    [("copy b (id) from stdin;\n", "V2__copy.sql: migration V2 (copy) failed"),  # the COPY failed: dbops sends no data
     ("copy b (id) from stdin;\n1\n\\.\n", "V2__copy.sql:3: migration V2 (copy) failed"),  # the server parses the data as SQL
     ("copy (select 1) to stdout;\n", None)],
    ids=["from-stdin", "from-stdin-with-data", "to-stdout"],
)
def test_a_copy_that_reaches_the_driver_leaves_history_as_the_run_reports_it(pg_url, scripts, run, monkeypatch, copy, failure) -> None:
    """Past the refusal, psycopg refused the COPY mid-batch and the batch's COMMIT still ran: a traceback with V1-V3
    recorded as Success. Now COPY FROM STDIN fails its script (V1 stays, nothing else), COPY TO STDOUT's rows are dropped."""
    import dbops.engine.engine as engine_module

    monkeypatch.setattr(engine_module, "refuse_unrunnable", lambda migrations, dialect: None)
    folder = scripts({"V1__a.sql": "create table a(id int);", "V2__copy.sql": "create table b(id int);\n" + copy,
                      "V3__c.sql": "create table c(id int);"})
    code, out, err = run(pg_url, folder, "--json", "migrate", "--direct")
    assert "Traceback" not in err
    if failure:
        assert code == 1 and failure in json.loads(out)["error"] and failure in err
        assert history_rows(pg_url) == [("1", "V1__a.sql", True)]
    else:
        assert code == 0, err
        assert history_rows(pg_url) == [("1", "V1__a.sql", True), ("2", "V2__copy.sql", True), ("3", "V3__c.sql", True)]
    code, out, err = run(pg_url, folder, "info", "--json")
    assert code == 0 and "Traceback" not in err


def test_transaction_control_in_a_transactional_script_is_refused_naming_its_line(pg_url, scripts, run) -> None:
    """A COMMIT mid-script committed part of it: the failure blamed line 1 (or the script before it, in a batch),
    said nothing was applied while table a stayed, and left the history inconsistent."""
    tx = "create table a(id int);\ncommit;\ncreate table b(id int);\nselect 1/0;\n"
    folder = scripts({"V1__ok.sql": "create table ok(id int);", "V2__tx.sql": tx, "V3__later.sql": "create table later(id int);"})
    code, out, err = run(pg_url, folder, "--json", "migrate", "--direct")
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"error: {folder}/V2__tx.sql:2: COMMIT inside a script that runs in a transaction")
    assert "Remove it, or set executeInTransaction=false in" in err and "V2__tx.sql.conf" in err
    assert history_rows(pg_url) == []
    (folder / "V2__tx.sql").write_text("create table a(id int);\ncommit;\ncreate table b(id int);\n")
    (folder / "V2__tx.sql.conf").write_text("executeInTransaction=false\n")
    code, _, err = run(pg_url, folder, "migrate", "--direct")
    assert code == 0, err
    assert history_rows(pg_url) == [("1", "V1__ok.sql", True), ("2", "V2__tx.sql", True), ("3", "V3__later.sql", True)]


@pytest.mark.parametrize("statement", ["begin", "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE", "start transaction", "end",
                                       "rollback", "abort", "commit and chain", "commit /* c */", "COMMIT\n-- done"])
def test_each_form_of_transaction_control_is_refused(pg_url, scripts, run, statement) -> None:
    folder = scripts({"V1__tx.sql": f"create table a(id int);\n\n{statement};\n"})
    code, _, err = run(pg_url, folder, "migrate", "--direct")
    assert code == 2 and "V1__tx.sql:3: " in err and "executeInTransaction=false" in err
    assert history_rows(pg_url) == []
