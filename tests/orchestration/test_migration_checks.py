"""Migration checks in Dagster: blocking asset checks on their migration's asset, run by the migrate step inside
the migration's transaction, again by the validate job when marked always, with their rows in the UI."""
from __future__ import annotations

import psycopg
from dagster import AssetCheckKey, AssetSelection, materialize

from dbops.orchestration.build import MIGRATE_JOB, VALIDATE_JOB
from tests.orchestration.support import check_results, definitions, key, materializations, query

SCRIPTS = {
    "V1__users.sql": "create table users (id int primary key, name text);\ninsert into users values (1, 'ada'), (2, 'grace');",
    "V1__users.sql.check": "-- every user has a name\nselect id, name from users where name is null;\n"
                           "-- dbops:always\n-- ids are positive\nselect id from users where id <= 0\n",
    "V2__orders.sql": "create table orders (id int, user_id int);",
    "V3__later.sql": "create table later (id int);",
}
BROKEN = "create table users (id int primary key, name text);\ninsert into users values (1, 'ada'), (2, null), (3, null);"


def run(defs, instance, job: str = MIGRATE_JOB, **kwargs):
    return defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False, **kwargs)


def history(url: str) -> list[tuple]:
    return query(url, "select script, success from flyway_schema_history order by installed_rank")


def test_each_check_is_a_blocking_asset_check_of_its_migration(scripts, pg_url):
    defs = definitions(scripts(SCRIPTS), pg_url)
    graph = defs.resolve_asset_graph()
    checks = {k: graph.get_check_spec(k) for k in graph.asset_check_keys if k.asset_key == key("v1__users")}
    names = {k.name: spec for k, spec in checks.items()}
    assert {"every_user_has_a_name", "ids_are_positive", "checksum"} <= set(names)
    spec = names["every_user_has_a_name"]
    assert spec.blocking and "V1__users.sql.check:2" in spec.description
    migrate_checks = defs.resolve_job_def(MIGRATE_JOB).asset_layer.asset_graph.asset_check_keys
    assert AssetCheckKey(key("v1__users"), "every_user_has_a_name") in migrate_checks
    assert AssetCheckKey(key("v1__users"), "checksum") not in migrate_checks


def test_the_migrate_job_reports_each_check_with_its_materialization(instance, scripts, pg_url):
    result = run(definitions(scripts(SCRIPTS), pg_url), instance)
    assert result.success
    checks = check_results(result.all_events)
    assert checks[("v1__users", "every_user_has_a_name")].passed
    assert checks[("v1__users", "ids_are_positive")].passed
    assert checks[("v1__users", "ids_are_positive")].metadata["check"].value.endswith("V1__users.sql.check:5")
    assert set(materializations(result.all_events)) == {key("v1__users"), key("v2__orders"), key("v3__later")}


def test_a_failing_check_fails_the_run_applies_nothing_and_shows_its_rows(instance, scripts, pg_url):
    folder = scripts({**SCRIPTS, "V1__users.sql": BROKEN})
    result = run(definitions(folder, pg_url), instance)
    assert not result.success
    failed = check_results(result.all_events)[("v1__users", "every_user_has_a_name")]
    assert not failed.passed and failed.severity.value == "ERROR"
    assert f"{folder}/V1__users.sql.check:2: check 'every user has a name' failed: 2 row(s)" in failed.description
    table = failed.metadata["offending_rows"].value
    assert "| id | name |" in table and "| 2 | NULL |" in table and "| 3 | NULL |" in table
    assert materializations(result.all_events) == {}
    assert history(pg_url) == []  # nothing recorded; the downstream migrations did not run either
    assert not query(pg_url, "select 1 from information_schema.tables where table_name in ('users', 'orders', 'later')")
    [step_failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "V1__users.sql.check:2: migration V1 (users) failed its check" in step_failure.event_specific_data.error.message
    assert query(pg_url, "select script, status from dbops_audit") == [("V1__users.sql", "failed")]


def test_materializing_one_asset_from_the_ui_runs_its_checks(instance, scripts, pg_url):
    folder = scripts({**SCRIPTS, "V1__users.sql": BROKEN})
    defs = definitions(folder, pg_url)
    assets = defs.resolve_assets_def(key("v1__users"))
    result = materialize([assets], selection=[key("v1__users")], instance=instance, raise_on_error=False)
    assert not result.success
    assert not check_results(result.all_events)[("v1__users", "every_user_has_a_name")].passed
    assert history(pg_url) == []


def test_the_validate_job_reruns_only_the_always_checks_of_applied_migrations(instance, scripts, pg_url):
    defs = definitions(scripts(SCRIPTS), pg_url)
    validate = defs.resolve_job_def(VALIDATE_JOB)
    selected = validate.asset_layer.asset_graph.asset_check_keys
    assert AssetCheckKey(key("v1__users"), "ids_are_positive") in selected
    assert AssetCheckKey(key("v1__users"), "every_user_has_a_name") not in selected

    before = check_results(run(defs, instance, VALIDATE_JOB).all_events)
    assert ("v1__users", "ids_are_positive") not in before  # not applied yet: nothing to check
    assert query(pg_url, "select table_name from information_schema.tables where table_schema = 'public'") == []  # applies nothing
    assert run(defs, instance).success

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("update users set id = -2 where id = 2")
    result = run(defs, instance, VALIDATE_JOB)
    assert not result.success  # a blocking check that fails fails the validate run (alerts pick it up)
    after = check_results(result.all_events)
    failed = after[("v1__users", "ids_are_positive")]
    assert not failed.passed and "| -2 |" in failed.metadata["offending_rows"].value
    assert ("v1__users", "every_user_has_a_name") not in after
    assert after[("v1__users", "checksum")].passed


def test_executing_a_check_alone_from_the_ui_runs_it_on_the_applied_migration(instance, scripts, pg_url):
    folder = scripts(SCRIPTS)
    defs = definitions(folder, pg_url)
    assert run(defs, instance).success
    check = AssetCheckKey(key("v1__users"), "every_user_has_a_name")
    assets = defs.resolve_assets_def(key("v1__users"))
    result = materialize([assets], selection=AssetSelection.checks(check), instance=instance)
    assert result.success
    assert check_results(result.all_events)[("v1__users", "every_user_has_a_name")].passed
    assert materializations(result.all_events) == {}
