"""Environments in the code location: partitions of the migrations in the dbops_migrate pool, one environment per
run, the nightly validate per environment, and the git sensor + rollout_sensor advancing a commit wave by wave."""
from __future__ import annotations

from datetime import datetime

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, build_schedule_context, build_sensor_context, instance_for_test

from dbops.orchestration.build import NIGHTLY_VALIDATE, build_definitions
from dbops.orchestration.partitions import POOL
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.tags import TAG_COMMIT, TAG_ENVIRONMENT, TAG_ROLLOUT, TAG_SOURCE, TAG_WAVE
from tests.gitrepo import GitRepo
from tests.orchestration.fleet_support import FLEET_SCRIPTS, applied_versions, make_fleet, write_flyway_toml
from tests.orchestration.support import check_results, execute_request

pytestmark = pytest.mark.xdist_group("rollout")


@pytest.fixture
def clean_env(monkeypatch):
    for variable in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_LOCATIONS", "DBOPS_ENVIRONMENT", "DBOPS_FLYWAY_TOML",
                     "DBOPS_ROLLOUT_PARALLEL", "DBOPS_GIT_REPOSITORY", "DBOPS_CODECOMMIT_REPOSITORY", "DBOPS_ENVIRONMENT_TASK_ROLE"):
        monkeypatch.delenv(variable, raising=False)


def migrations_of(defs):
    return defs.resolve_assets_def(AssetKey(["migrations", "v1__customers"]))


def test_without_environments_nothing_is_partitioned(tmp_path, scripts, pg_url, monkeypatch, clean_env):
    folder = scripts(FLEET_SCRIPTS)
    monkeypatch.chdir(tmp_path)
    defs = build_definitions(DbopsResource(url=pg_url, locations=[str(folder)]), with_sensors=True)
    assets = migrations_of(defs)
    assert assets.partitions_def is None and assets.op.pool is None
    assert "rollout_sensor" not in {s.name for s in defs.sensors}
    schedule = defs.resolve_schedule_def(NIGHTLY_VALIDATE)
    (request,) = schedule.evaluate_tick(build_schedule_context()).run_requests
    assert request.tags[TAG_SOURCE] == "schedule" and TAG_ENVIRONMENT not in request.tags


def test_environments_are_partitions_in_the_pool_and_validate_runs_per_environment(tmp_path, scripts, pg_server, monkeypatch, clean_env):
    folder = scripts(FLEET_SCRIPTS)
    fleet = make_fleet(pg_server, [0, 1, 1])
    write_flyway_toml(tmp_path / "flyway.toml", fleet)
    monkeypatch.chdir(tmp_path)
    defs = build_definitions(DbopsResource(locations=[str(folder)]), with_sensors=True)
    assets = migrations_of(defs)
    assert assets.partitions_def.get_partition_keys() == [e.name for e in fleet]
    assert assets.op.pool == POOL
    assert "rollout_sensor" in {s.name for s in defs.sensors}
    schedule = defs.resolve_schedule_def(NIGHTLY_VALIDATE)
    requests = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 3))).run_requests
    assert [r.tags[TAG_ENVIRONMENT] for r in requests] == [e.name for e in fleet]

    with instance_for_test() as instance:
        migrate = defs.resolve_job_def("migrate")
        result = migrate.execute_in_process(instance=instance, partition_key=fleet[1].name)
        assert result.success
        assert [applied_versions(e.url) for e in fleet] == [[], ["1", "2", "3"], []]
        assert instance.get_materialized_partitions(AssetKey(["migrations", "v2__orders"])) == {fleet[1].name}
        states = {}
        for env in (fleet[0], fleet[1]):
            validate = defs.resolve_job_def("validate").execute_in_process(instance=instance, tags={TAG_ENVIRONMENT: env.name})
            assert validate.success
            checks = check_results(validate.all_events)
            states[env.name] = checks[("v1__customers", "checksum")].metadata["state"].value
        assert states == {fleet[0].name: "Pending", fleet[1].name: "Success"}


def test_a_commit_rolls_out_wave_by_wave_and_a_failure_holds_the_next_wave(tmp_path, pg_server, monkeypatch, clean_env):
    repo = GitRepo(tmp_path / "warehouse")
    commit = repo.commit("Add the shop", {f"sql/{name}": sql for name, sql in FLEET_SCRIPTS.items()})
    fleet = make_fleet(pg_server, [0, 0, 1, 1, 1, 2])
    broken = fleet[3]
    write_flyway_toml(repo.path / "flyway.toml", fleet, {broken.name: "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"})
    monkeypatch.chdir(repo.path)
    monkeypatch.setenv("DBOPS_GIT_REPOSITORY", str(repo.path))
    monkeypatch.setenv("DBOPS_ROLLOUT_PARALLEL", "2")
    defs = build_definitions(DbopsResource(locations=["sql"]), with_sensors=True)
    git_sensor, rollout_sensor = defs.resolve_sensor_def("git_sensor"), defs.resolve_sensor_def("rollout_sensor")
    migrate = defs.resolve_job_def("migrate")

    def execute(requests, instance: DagsterInstance) -> None:
        for request in requests:
            execute_request(migrate, request, instance)

    def advance(instance: DagsterInstance):
        return rollout_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))

    with instance_for_test() as instance:
        first = git_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert [r.partition_key for r in first.run_requests] == [fleet[0].name, fleet[1].name]
        request = first.run_requests[0]
        assert request.tags[TAG_ROLLOUT] == commit and request.tags[TAG_COMMIT] == commit and request.tags[TAG_WAVE] == "0"
        assert advance(instance).run_requests == [], "wave 0 is running: nothing more to start"
        execute(first.run_requests, instance)

        second = advance(instance)
        assert [r.partition_key for r in second.run_requests] == [fleet[2].name, broken.name]  # two at a time
        execute(second.run_requests, instance)
        held = advance(instance)
        assert held.run_requests == []
        assert f"{broken.name} failed" in held.skip_message and "127.0.0.1:1" in held.skip_message
        assert [applied_versions(e.url) for e in fleet if e is not broken] == [["1", "2", "3"]] * 3 + [[], []]

        write_flyway_toml(repo.path / "flyway.toml", fleet)  # the fix; the failed run is re-executed (same tags)
        execute([r for r in second.run_requests if r.partition_key == broken.name], instance)
        third = advance(instance)
        assert [r.partition_key for r in third.run_requests] == [fleet[4].name]
        execute(third.run_requests, instance)
        last = advance(instance)
        assert [r.partition_key for r in last.run_requests] == [fleet[5].name]
        execute(last.run_requests, instance)
        assert "every wave succeeded" in advance(instance).skip_message
        assert all(applied_versions(e.url) == ["1", "2", "3"] for e in fleet)


def test_a_sensor_rollout_run_plans_only_what_the_instance_has_not_recorded_in_its_environment(tmp_path, pg_server, monkeypatch, clean_env):
    repo = GitRepo(tmp_path / "warehouse")
    repo.commit("Add the shop", {f"sql/{name}": sql for name, sql in FLEET_SCRIPTS.items()})
    fleet = make_fleet(pg_server, [0, 0, 0])
    write_flyway_toml(repo.path / "flyway.toml", fleet[:2])
    monkeypatch.chdir(repo.path)
    monkeypatch.setenv("DBOPS_GIT_REPOSITORY", str(repo.path))
    with instance_for_test() as instance:
        defs = build_definitions(DbopsResource(locations=["sql"]), with_sensors=True)
        first = defs.resolve_sensor_def("git_sensor").evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert all(r.asset_selection is None for r in first.run_requests)  # no run yet in either: the whole job
        assert all(execute_request(defs.resolve_job_def("migrate"), r, instance).success for r in first.run_requests)

        repo.commit("Add the items", {"sql/V4__items.sql": "create table shop.items (id int);"})
        write_flyway_toml(repo.path / "flyway.toml", fleet)  # and a new environment
        defs = build_definitions(DbopsResource(locations=["sql"]), with_sensors=True)
        second = defs.resolve_sensor_def("git_sensor").evaluate_tick(build_sensor_context(instance=instance, definitions=defs, cursor=first.cursor))
        selected = {r.partition_key: r.asset_selection and [k.path[-1] for k in r.asset_selection] for r in second.run_requests}
        assert selected == {fleet[0].name: ["v4__items"], fleet[1].name: ["v4__items"], fleet[2].name: None}  # new: the whole job
        runs = [execute_request(defs.resolve_job_def("migrate"), r, instance) for r in second.run_requests]
        assert all(run.success for run in runs)
        planned = {run.run_id: len(instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)) for run in runs}
        assert sorted(planned.values()) == [1, 1, 4]
        assert all(applied_versions(e.url) == ["1", "2", "3", "4"] for e in fleet)


def test_a_task_role_without_its_placeholder_skips_the_schedule_and_the_rollout_with_the_reason(tmp_path, scripts, pg_server, monkeypatch, clean_env):
    folder = scripts(FLEET_SCRIPTS)
    fleet = make_fleet(pg_server, [0, 1])
    write_flyway_toml(tmp_path / "flyway.toml", fleet)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBOPS_ENVIRONMENT_TASK_ROLE", "arn:aws:iam::123456789012:role/dbops-env")
    defs = build_definitions(DbopsResource(locations=[str(folder)]), with_sensors=True)
    scheduled = defs.resolve_schedule_def(NIGHTLY_VALIDATE).evaluate_tick(build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 3)))
    assert not scheduled.run_requests and "DBOPS_ENVIRONMENT_TASK_ROLE" in scheduled.skip_message and "{environment}" in scheduled.skip_message
    with instance_for_test() as instance:
        migrate = defs.resolve_job_def("migrate")
        migrate.execute_in_process(instance=instance, partition_key=fleet[0].name, tags={TAG_SOURCE: "sensor", TAG_ROLLOUT: "c0ffee"})
        ticked = defs.resolve_sensor_def("rollout_sensor").evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
    assert not ticked.run_requests and "DBOPS_ENVIRONMENT_TASK_ROLE" in ticked.skip_message
