"""End to end: commits to a real git repository become migrate runs, through the code location's own definitions.

The sensor is evaluated with build_sensor_context and each RunRequest is executed as the daemon would
(its tags plus the run key) on a temporary instance, against a fresh PostgreSQL database.
"""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter, build_sensor_context

from dbops.orchestration.build import build_definitions
from dbops.orchestration.selection import TAG_SELECTION
from dbops.orchestration.tags import TAG_AUTHOR, TAG_COMMIT, TAG_INCLUDED, TAG_MESSAGE, TAG_SOURCE
from tests.gitrepo import GitRepo
from tests.orchestration.support import execute_request, key, materializations, query

RUN_KEY_TAG = "dagster/run_key"
ADA = "Ada Lovelace <ada@example.com>"
GRACE = "Grace Hopper <grace@example.com>"


class Flow:
    """The code location as workspace.yaml loads it (DBOPS_* environment), its git_sensor, and the runs it started."""

    def __init__(self, repo: GitRepo, instance: DagsterInstance) -> None:
        self.repo = repo
        self.instance = instance
        self.defs = build_definitions()
        self.cursor: str | None = None
        self.cursors: list[str | None] = []

    def tick(self, cursor: str | None = None, move: bool = True):
        """Evaluate git_sensor once, run what it requests, and keep its cursor."""
        sensor = self.defs.resolve_sensor_def("git_sensor")
        start = self.cursor if move else cursor
        data = sensor.evaluate_tick(build_sensor_context(instance=self.instance, cursor=start, definitions=self.defs))
        results = []
        for request in data.run_requests or []:
            results.append(execute_request(self.defs.resolve_job_def("migrate"), request, self.instance))
        if move:
            self.cursors.append(self.cursor)
            self.cursor = data.cursor
        return data, results


@pytest.fixture
def flow(tmp_path: Path, pg_url: str, instance: DagsterInstance, monkeypatch) -> Flow:
    repo = GitRepo(tmp_path / "warehouse")
    repo.commit("add V1", {"sql/V1__customers.sql": "create table customers (id int primary key, name text);"})
    monkeypatch.chdir(tmp_path)
    for name in ("DBOPS_CODECOMMIT_REPOSITORY", "DBOPS_GIT_BRANCH", "DBOPS_CONFIG", "DBOPS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DBOPS_URL", pg_url)
    monkeypatch.setenv("DBOPS_LOCATIONS", str(repo.path / "sql"))
    monkeypatch.setenv("DBOPS_GIT_REPOSITORY", str(repo.path))
    return Flow(repo, instance)


def applied(result) -> list[str]:
    return [k.path[-1] for k in materializations(result.all_events)]


def test_each_commit_on_main_becomes_one_run_applying_exactly_its_scripts(flow: Flow, pg_url: str) -> None:
    repo, instance = flow.repo, flow.instance
    _, [first] = flow.tick()
    assert first.success and applied(first) == ["v1__customers"]

    v2 = repo.commit("add V2", {"sql/V2__orders.sql": "create table orders (id int, customer_id int);"}, author=GRACE)
    repo.write({"sql/V9__draft.sql": "this is not even SQL;"})  # uncommitted: never applied by a commit's run
    data, [run_v2] = flow.tick()
    assert [r.run_key for r in data.run_requests] == [v2]
    # The code location loaded before V2: of its assets only V1, recorded, is planned; V2 is applied all the same.
    assert data.run_requests[0].asset_selection == [key("v1__customers")]
    assert run_v2.success and applied(run_v2) == ["v2__orders"]
    tags = instance.get_run_by_id(run_v2.run_id).tags
    assert (tags[TAG_SOURCE], tags[TAG_COMMIT], tags[TAG_AUTHOR], tags[TAG_MESSAGE]) == ("sensor", v2, GRACE, "add V2")

    v34 = repo.commit("add V3+V4", {
        "sql/V3__items.sql": "create table items (id int, order_id int);",
        "sql/V4__Add-Index.sql": "create index items_order on items (order_id);",
    })
    data, [run_v34] = flow.tick()
    assert [r.run_key for r in data.run_requests] == [v34]
    assert data.run_requests[0].tags["dbops/new_scripts"] == "V3__items.sql,V4__Add-Index.sql"
    assert run_v34.success and applied(run_v34) == ["v3__items", "v4__add_index"]
    reloaded = build_definitions().resolve_asset_graph().get_all_asset_keys()
    for name in ("v3__items", "v4__add_index"):
        assert key(name) in reloaded
        assert instance.get_latest_materialization_event(key(name)).run_id == run_v34.run_id

    readme = repo.commit("change only README", {"README.md": "The warehouse's migrations."})
    data, runs = flow.tick()
    assert runs == [] and flow.cursor == readme
    assert "none changes a script under" in data.skip_message

    edit = repo.commit("edit an applied script", {"sql/V2__orders.sql": "create table orders (id bigint, customer_id int);"})
    data, [run_edit] = flow.tick()
    assert [r.run_key for r in data.run_requests] == [edit] and not run_edit.success
    failure = next(e for e in run_edit.all_events if e.event_type == DagsterEventType.STEP_FAILURE).step_failure_data.user_failure_data
    assert "V2__orders.sql" in failure.description and "checksum" in failure.description

    assert query(pg_url, "select script from flyway_schema_history where version is not null order by installed_rank") == [
        ("V1__customers.sql",), ("V2__orders.sql",), ("V3__items.sql",), ("V4__Add-Index.sql",)]
    audit = query(pg_url, "select script, commit_id, commit_author, commit_message, source, status from dbops_audit order by started_at")
    assert [row[:4] for row in audit] == [
        ("V1__customers.sql", first_commit(repo), ADA, "add V1"),
        ("V2__orders.sql", v2, GRACE, "add V2"),
        ("V3__items.sql", v34, ADA, "add V3+V4"),
        ("V4__Add-Index.sql", v34, ADA, "add V3+V4"),
    ]
    assert {row[4:] for row in audit} == {("sensor", "success")}

    # The daemon restarts: from the stored cursor nothing starts; from any earlier cursor the sensor
    # asks again only for run keys that already have a run, which the daemon never launches twice.
    data, runs = flow.tick()
    assert runs == [] and data.skip_message.startswith("no new commit on main")
    launched = {run.tags[RUN_KEY_TAG] for run in instance.get_runs(RunsFilter(tags={TAG_SOURCE: "sensor"}))}
    assert launched == {first_commit(repo), v2, v34, edit}
    for earlier in flow.cursors:
        data, _ = flow.tick(cursor=earlier, move=False)
        assert {r.run_key for r in data.run_requests} <= launched


def planned(instance: DagsterInstance, run_id: str) -> list:
    """The assets a run planned to materialize (one stored event each)."""
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return [e.dagster_event.event_specific_data.asset_key for e in events]


def test_a_run_applies_what_the_history_says_is_pending_not_only_what_dagster_expected(flow: Flow, pg_url: str) -> None:
    repo, instance = flow.repo, flow.instance
    flow.tick()
    repo.commit("add V2", {"sql/V2__orders.sql": "create table orders (id int);"})
    flow.defs = build_definitions()
    flow.tick()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # restored from a backup taken before V2
        conn.execute("drop table orders")
        conn.execute("delete from flyway_schema_history where version = '2'")
    repo.commit("add V3", {"sql/V3__items.sql": "create table items (id int);"})
    flow.defs = build_definitions()
    data, [run] = flow.tick()
    request = data.run_requests[0]
    assert request.asset_selection == [key("v3__items")] and request.tags[TAG_SELECTION] == "pending"
    assert planned(instance, run.run_id) == [key("v3__items")]  # one planned event, not one per script
    assert run.success and applied(run) == ["v2__orders", "v3__items"]
    assert query(pg_url, "select version from flyway_schema_history where success order by installed_rank") == [("1",), ("2",), ("3",)]
    logged = [entry.user_message for entry in instance.all_logs(run.run_id)]
    assert any("did not expect to be pending" in m and "V2__orders.sql" in m for m in logged)


def test_commits_pushed_together_make_one_run_naming_each_scripts_commit(flow: Flow, pg_url: str) -> None:
    repo = flow.repo
    flow.tick()
    v2 = repo.commit("add V2", {"sql/V2__orders.sql": "create table orders (id int);"}, author=GRACE)
    v3 = repo.commit("add V3", {"sql/V3__items.sql": "create table items (id int);"})
    repo.commit("docs", {"README.md": "hello"})
    data, [run] = flow.tick()
    assert run.success and applied(run) == ["v2__orders", "v3__items"]
    assert data.run_requests[0].run_key == v3 and data.run_requests[0].tags[TAG_INCLUDED] == v2
    audit = query(pg_url, "select script, commit_id, commit_author, commit_message from dbops_audit where script <> 'V1__customers.sql' order by started_at")
    assert audit == [("V2__orders.sql", v2, GRACE, "add V2"), ("V3__items.sql", v3, ADA, "add V3")]
    found = materializations(run.all_events)
    assert found[key("v2__orders")]["commit"] == v2 and found[key("v3__items")]["commit"] == v3


def first_commit(repo: GitRepo) -> str:
    return repo.git("rev-list", "--max-parents=0", "HEAD")


def test_a_custom_translators_keys_are_what_the_sensor_compares_and_runs_record(flow: Flow, pg_url: str) -> None:
    from dagster import AssetKey

    from dbops.orchestration.translator import MigrationTranslator

    repo = flow.repo
    start = first_commit(repo)
    v2 = repo.commit("add V2", {"sql/V2__orders.sql": "create table orders (id int);"})
    flow.defs = build_definitions(translator=MigrationTranslator(key_prefix=("dw", "changes")))
    flow.cursor = start
    data, [run] = flow.tick()
    assert [r.run_key for r in data.run_requests] == [v2]
    assert "dbops/new_scripts" not in data.run_requests[0].tags  # V2 has an asset, under dw/changes
    recorded = materializations(run.all_events)
    assert list(recorded) == [AssetKey(["dw", "changes", "v1__customers"]), AssetKey(["dw", "changes", "v2__orders"])]
    assert [m["script"] for m in recorded.values()] == ["V1__customers.sql", "V2__orders.sql"]  # as in the history table
