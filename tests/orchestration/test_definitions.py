"""The code location: one asset per script chained in version order, table lineage, jobs, schedule, translator."""
from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import AssetKey, Definitions

from dbops.errors import ConfigError
from dbops.orchestration.build import MIGRATE_JOB, build_definitions, migrate_definitions
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.translator import MigrationTranslator, asset_name
from dbops.scripts.migrations import discover
from dbops.scripts.sources import FolderSource
from tests.orchestration.support import definitions, key


def value(item):
    return getattr(item, "value", item)


EXAMPLE = {
    "V1__create_users.sql": "create table app.users (id int);",
    "V1.1__Add-Email.sql": "alter table app.users add column email varchar(200);",
    "V2__orders.sql": "create table app.orders (id int, user_id int);\ncreate view app.v_orders as select id from app.orders;",
    "R__report.sql": "create or replace view app.v_report as select count(*) as n from app.orders;",
    "U2__orders.sql": "drop table app.orders;",
}


@pytest.mark.parametrize(
    ("script", "name"),
    [("V1.1__Add-users.sql", "v1_1__add_users"), ("sub/R__Views (old).SQL", "r__views__old_"), ("V2.sql", "v2")],
)
def test_asset_name(script, name):
    assert asset_name(script) == name


def test_one_asset_per_script_chained_in_order_with_spec_details(scripts):
    folder = scripts(EXAMPLE)
    defs = definitions(folder, "postgresql://u@127.0.0.1/db")
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    chain = ["v1__create_users", "v1_1__add_email", "v2__orders", "r__report"]
    migrations = {k for k in graph.get_all_asset_keys() if k.path[0] == "migrations"}
    assert migrations == {key(n) for n in chain}
    for before, after in zip(chain, chain[1:]):
        assert graph.get(key(after)).parent_keys == {key(before)}
    node = graph.get(key("v2__orders"))
    catalog = discover(FolderSource([str(folder)]).snapshot().files)
    v2 = next(m for m in catalog.migrations if m.script == "V2__orders.sql")
    assert node.code_version == str(v2.checksum)
    assert node.group_name == "migrations"
    assert set(node.kinds) == {"sql", "postgres"}
    assert value(node.metadata["statements"]) == 2
    assert node.metadata["version"] == "2"
    assert value(node.metadata["checksum"]) == v2.checksum
    assert node.metadata["script"] == f"{folder}/V2__orders.sql"
    assert "create view app.v_orders" in value(node.metadata["sql"])


def test_tables_and_views_are_external_assets_downstream_of_the_scripts_touching_them(scripts):
    defs = definitions(scripts(EXAMPLE), "redshift://u@example.com:5439/dev")
    graph = defs.resolve_asset_graph()
    users = graph.get(AssetKey(["warehouse", "app", "users"]))
    assert users.parent_keys == {key("v1__create_users"), key("v1_1__add_email")}
    assert not users.is_materializable
    assert graph.get(AssetKey(["warehouse", "app", "v_report"])).parent_keys == {key("r__report")}
    assert graph.get(AssetKey(["warehouse", "app", "v_orders"])).kinds == {"view", "redshift"}
    assert set(graph.get(key("v2__orders")).kinds) == {"sql", "redshift"}


def test_jobs_schedule_and_checks(scripts):
    defs = definitions(scripts(EXAMPLE), "postgresql://u@127.0.0.1/db")
    migrate = defs.resolve_job_def("migrate")
    validate = defs.resolve_job_def("validate")
    assert migrate.asset_layer.selected_asset_keys == {key(n) for n in ("v1__create_users", "v1_1__add_email", "v2__orders", "r__report")}
    assert not migrate.asset_layer.asset_graph.asset_check_keys
    assert not validate.asset_layer.selected_asset_keys
    checks = validate.asset_layer.asset_graph.asset_check_keys
    assert {(c.asset_key.path[-1], c.name) for c in checks} >= {("v2__orders", "checksum"), ("r__report", "schema_drift")}
    schedule = defs.get_schedule_def("nightly_validate")
    assert schedule.job_name == "validate" and schedule.cron_schedule == "0 3 * * *"
    checksum = next(c for c in checks if c.name == "checksum")
    assert defs.resolve_asset_graph().get_check_spec(checksum).blocking


@pytest.mark.parametrize(("cron", "valid"), [("*/15 * * * *", True), ("bogus", False), ("0 3 * * * *", False)])
def test_the_validate_schedule_follows_dbops_validate_cron(scripts, monkeypatch, cron, valid):
    monkeypatch.setenv("DBOPS_VALIDATE_CRON", cron)
    if valid:
        defs = definitions(scripts(EXAMPLE), "postgresql://u@127.0.0.1/db")
        assert defs.get_schedule_def("nightly_validate").cron_schedule == cron
        return
    with pytest.raises(ConfigError, match=r"DBOPS_VALIDATE_CRON=.* is not a cron expression"):
        definitions(scripts(EXAMPLE), "postgresql://u@127.0.0.1/db")


def test_a_translator_subclass_changes_keys_groups_and_metadata(scripts):
    class Warehouse(MigrationTranslator):
        def get_group_name(self, migration):
            return "ddl_" + ("repeatable" if migration.version is None else "versioned")

    folder = scripts(EXAMPLE)
    translator = Warehouse(key_prefix=("dwh", "migrations"), table_key_prefix=("dwh", "tables"), extra_metadata={"team": "data-platform"})
    defs = build_definitions(DbopsResource(locations=[str(folder)]), translator=translator, with_sensors=False)
    graph = defs.resolve_asset_graph()
    node = graph.get(AssetKey(["dwh", "migrations", "r__report"]))
    assert node.group_name == "ddl_repeatable"
    assert node.metadata["team"] == "data-platform"
    assert node.parent_keys == {AssetKey(["dwh", "migrations", "v2__orders"])}
    assert graph.get(AssetKey(["dwh", "tables", "app", "orders"])).parent_keys == {AssetKey(["dwh", "migrations", "v2__orders"])}


def test_the_migrate_job_dbops_migrate_runs_is_the_code_locations_whole_and_subset(scripts):
    """dbops migrate builds only the migrate job; Dagster must see the job of the code location (same snapshot)."""
    folder = scripts(EXAMPLE)
    resource = DbopsResource(url="postgresql://u@/db", locations=[str(folder)])
    project = MigrationProject.load(resource.settings(), resource.dialect)
    full = build_definitions(resource, with_sensors=False).resolve_job_def(MIGRATE_JOB)
    launched = migrate_definitions(resource, project).resolve_job_def(MIGRATE_JOB)
    assert launched.get_job_snapshot_id() == full.get_job_snapshot_id()
    selection = frozenset([key("v1_1__add_email"), key("v2__orders")])
    subsets = [job.get_subset(asset_selection=selection, asset_check_selection=frozenset()) for job in (full, launched)]
    assert subsets[0].get_job_snapshot_id() == subsets[1].get_job_snapshot_id()
    assert {k.to_user_string() for k in launched.asset_layer.executable_asset_keys} == {
        "migrations/" + name for name in ("v1__create_users", "v1_1__add_email", "v2__orders", "r__report")
    }


def test_two_scripts_with_the_same_asset_name_are_refused_naming_both(scripts):
    folder = scripts({"R__a-b.sql": "select 1;", "R__a_b.sql": "select 2;"})
    with pytest.raises(ConfigError, match=r"R__a_b\.sql and .*R__a-b\.sql both become asset migrations/r__a_b"):
        definitions(folder, "postgresql://u@127.0.0.1/db")


def test_sql_metadata_is_cut_for_long_scripts(scripts):
    folder = scripts({"V1__big.sql": "select 1;\n" * 2000})
    catalog = discover(FolderSource([str(folder)]).snapshot().files)
    spec = MigrationTranslator().get_asset_spec(catalog.migrations[0], MigrationProject.from_catalog(catalog).facts[catalog.migrations[0].path], None)
    text = value(spec.metadata["sql"])
    assert len(text) < 4200 and "more characters in" in text


def test_the_workspace_loads_the_repository_sql_folder():
    """`dagster definitions validate -w workspace.yaml` passes, with one asset per script of sql/."""
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Validation successful for code location dbops" in done.stdout + done.stderr
    from dbops.definitions import defs

    project = MigrationProject.load(DbopsResource.from_env().settings())
    keys = {k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "migrations"}
    assert keys == {key(asset_name(m.script)) for m in project.migrations}
    assert len(keys) == len(project.migrations) >= 10


@pytest.mark.parametrize(("field", "value"), [("statement_timeout", float("nan")), ("lock_timeout", float("inf")), ("statement_timeout", 1e12)])
def test_a_resource_timeout_postgresql_cannot_hold_is_bad_config_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^{field} {value!r} ") as raised:
        DbopsResource(locations=["sql"], **{field: value}).settings()
    assert raised.value.exit_code == 2
