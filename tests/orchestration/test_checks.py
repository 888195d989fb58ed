"""The validate job's checks: an edited applied script fails its checksum check; hand-made schema changes show as drift."""
from __future__ import annotations

import psycopg

from tests.orchestration.support import check_results, definitions

SCRIPTS = {
    "V1__create_users.sql": "create schema app;\ncreate table app.users (id int, name varchar(50));",
    "V2__create_orders.sql": "create table app.orders (id int, user_id int);\ncreate view app.v_orders as select id from app.orders;",
}


def migrate(defs, instance):
    result = defs.resolve_job_def("migrate").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    return result


def validate(defs, instance):
    result = defs.resolve_job_def("validate").execute_in_process(instance=instance, raise_on_error=False)
    return check_results(result.all_events)


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def test_after_a_migrate_every_check_passes(instance, scripts, pg_url):
    defs = definitions(scripts(SCRIPTS), pg_url)
    migrate(defs, instance)
    results = validate(defs, instance)
    assert results[("v1__create_users", "checksum")].passed
    assert "checksum" in results[("v2__create_orders", "checksum")].description
    drift = results[("v2__create_orders", "schema_drift")]
    assert drift.passed and "no drift" in drift.description


def test_before_any_migrate_scripts_are_pending_and_there_is_no_snapshot(instance, scripts, pg_url):
    results = validate(definitions(scripts(SCRIPTS), pg_url), instance)
    assert results[("v1__create_users", "checksum")].passed
    assert "Pending, not applied yet" in results[("v1__create_users", "checksum")].description
    assert "no snapshot yet" in results[("v2__create_orders", "schema_drift")].description


def test_editing_an_applied_script_fails_its_checksum_check_naming_the_file(instance, scripts, pg_url):
    folder = scripts(SCRIPTS)
    migrate(definitions(folder, pg_url), instance)
    scripts({"V1__create_users.sql": SCRIPTS["V1__create_users.sql"] + "\n-- edited after it was applied\n"})
    results = validate(definitions(folder, pg_url), instance)
    failed = results[("v1__create_users", "checksum")]
    assert not failed.passed
    assert f"{folder}/V1__create_users.sql" in failed.description and "checksum mismatch for version 1" in failed.description
    assert failed.severity.value == "ERROR"
    assert results[("v2__create_orders", "checksum")].passed


def test_tables_changed_by_hand_show_up_in_the_drift_check_by_name(instance, scripts, pg_url):
    defs = definitions(scripts(SCRIPTS), pg_url)
    migrate(defs, instance)
    execute(pg_url, "alter table app.users alter column name type varchar(80)")
    execute(pg_url, "create table app.extra (id int)")
    execute(pg_url, "drop view app.v_orders")
    drift = validate(defs, instance)[("v2__create_orders", "schema_drift")]
    assert not drift.passed
    assert "added: app.extra" in drift.description
    assert "dropped: app.v_orders" in drift.description
    assert "altered: app.users (name character varying(50) -> name character varying(80))" in drift.description
    assert drift.metadata["added"].value == ["app.extra"]


def test_a_migrate_records_a_new_snapshot_and_warns_about_earlier_drift(instance, scripts, pg_url):
    folder = scripts(SCRIPTS)
    migrate(definitions(folder, pg_url), instance)
    execute(pg_url, "create table app.by_hand (id int)")
    scripts({"V3__add_email.sql": "alter table app.users add column email varchar(200);"})
    defs = definitions(folder, pg_url)
    result = migrate(defs, instance)
    warnings = [e.message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    assert any("not through a migration: added: app.by_hand" in m for m in warnings)
    assert validate(defs, instance)[("v3__add_email", "schema_drift")].passed


def test_migrations_applied_outside_dagster_are_named_as_the_likely_cause(instance, scripts, pg_url):
    from dbops.config import Settings
    from dbops.engine.engine import Engine
    from dbops.targets import open_target

    folder = scripts(SCRIPTS)
    migrate(definitions(folder, pg_url), instance)
    scripts({"V3__add_email.sql": "alter table app.users add column email varchar(200);"})
    list(Engine(open_target(pg_url), Settings(locations=[str(folder)])).migrate())
    drift = validate(definitions(folder, pg_url), instance)[("v3__add_email", "schema_drift")]
    assert not drift.passed
    assert "altered: app.users (column email added)" in drift.description
    assert "history rows 3..3 were applied after the snapshot" in drift.description
