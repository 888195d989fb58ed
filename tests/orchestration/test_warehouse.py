"""After a migrate run, each table or view the applied scripts touched is observed with its live columns."""
from __future__ import annotations

from typing import Any

import psycopg
from dagster import AssetKey, DagsterEventType, DagsterInstance

from tests.orchestration.support import definitions

SCRIPTS = {
    "V1__orders.sql": (
        "create schema sales;\n"
        "create table sales.orders (id int not null, amount numeric(10,2), note varchar(40));\n"
        "create table staging (id int);"
    ),
    "V2__totals.sql": "create view order_totals as select count(*) as orders, sum(amount) as total from sales.orders;",
}
V3 = {"V3__tidy.sql": "drop table staging;\nalter table sales.orders add column placed_at timestamp;"}


def table(*parts: str) -> AssetKey:
    return AssetKey(["warehouse", *parts])


def migrate(folder, url: str, instance: DagsterInstance):
    return definitions(folder, url).resolve_job_def("migrate").execute_in_process(instance=instance, raise_on_error=False)


def latest(instance: DagsterInstance, key: AssetKey) -> tuple[str, dict[str, Any]]:
    """Run id and metadata values of the newest observation of `key`."""
    (record,) = instance.fetch_observations(key, limit=1).records
    observation = record.asset_observation
    return record.run_id, {k: v.value for k, v in observation.metadata.items()}


def columns(metadata: dict[str, Any]) -> list[tuple[str, str, bool]]:
    schema = metadata["dagster/column_schema"]
    return [(c.name, c.type, c.constraints.nullable) for c in schema.columns]


def observed_keys(result) -> list[AssetKey]:
    return [e.asset_key for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]


def test_each_touched_table_and_view_is_observed_with_its_columns_kind_and_script(instance, scripts, any_url):
    folder = scripts(SCRIPTS)
    result = migrate(folder, any_url, instance)
    assert result.success
    assert observed_keys(result) == [table("public", "order_totals"), table("public", "staging"), table("sales", "orders")]

    run_id, orders = latest(instance, table("sales", "orders"))
    assert run_id == result.run_id
    assert columns(orders) == [("id", "integer", False), ("amount", "numeric(10,2)", True), ("note", "character varying(40)", True)]
    assert orders["object"] == "table" and orders["status"] == "present" and orders["script"].endswith("V1__orders.sql")
    assert orders["dagster/table_name"] == "sales.orders"

    _, totals = latest(instance, table("public", "order_totals"))
    assert totals["object"] == "view" and totals["script"].endswith("V2__totals.sql")
    assert [name for name, _, _ in columns(totals)] == ["orders", "total"]

    scripts(V3)
    again = migrate(folder, any_url, instance)
    assert again.success
    assert observed_keys(again) == [table("public", "staging"), table("sales", "orders")]
    _, orders = latest(instance, table("sales", "orders"))
    assert columns(orders)[-1] == ("placed_at", "timestamp without time zone", True)
    assert orders["script"].endswith("V3__tidy.sql") and orders["action"] == "altered"
    run_id, staging = latest(instance, table("public", "staging"))
    assert run_id == again.run_id
    assert staging["status"] == "dropped" and staging["script"].endswith("V3__tidy.sql") and columns(staging) == []


def test_a_run_with_nothing_pending_observes_nothing(instance, scripts, pg_url):
    folder = scripts(SCRIPTS)
    assert migrate(folder, pg_url, instance).success
    again = migrate(folder, pg_url, instance)
    assert again.success and observed_keys(again) == []


def test_a_second_database_migrated_to_the_same_shape_adds_no_observation(instance, scripts, pg_server):
    folder = scripts(SCRIPTS)
    first = migrate(folder, pg_server.url(pg_server.create_database()), instance)
    assert first.success and len(observed_keys(first)) == 3
    second_url = pg_server.url(pg_server.create_database())
    second = migrate(folder, second_url, instance)
    assert second.success and observed_keys(second) == []
    assert latest(instance, table("sales", "orders"))[0] == first.run_id

    with psycopg.connect(second_url, autocommit=True) as conn:  # this database's orders differs from the first's
        conn.execute("alter table sales.orders add column region text")
    scripts(V3)
    third = migrate(folder, second_url, instance)
    assert observed_keys(third) == [table("public", "staging"), table("sales", "orders")]
    assert [name for name, _, _ in columns(latest(instance, table("sales", "orders"))[1])][-2:] == ["region", "placed_at"]


def test_tables_of_the_scripts_applied_before_a_failure_are_observed(instance, scripts, pg_url):
    folder = scripts({**SCRIPTS, "V3__broken.sql": "create table broken (id int;"})
    result = migrate(folder, pg_url, instance)
    assert not result.success
    assert observed_keys(result) == [table("public", "order_totals"), table("public", "staging"), table("sales", "orders")]
    assert instance.fetch_observations(table("public", "broken"), limit=1).records == []


def test_a_script_the_code_location_has_not_loaded_is_read_for_its_tables(instance, scripts, pg_url):
    folder = scripts(SCRIPTS)
    defs = definitions(folder, pg_url)
    scripts({"V3__returns.sql": "create table sales.returns (order_id int, reason text);"})
    result = defs.resolve_job_def("migrate").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    _, returns = latest(instance, table("sales", "returns"))
    assert columns(returns) == [("order_id", "integer", True), ("reason", "text", True)]
    assert returns["script"].endswith("V3__returns.sql") and returns["action"] == "created"
