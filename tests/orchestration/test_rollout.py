"""Rollouts: 50 local databases as environments in 3 waves, through `dbops rollout` and the Dagster instance.

A wave-1 environment whose privilege is revoked and one that cannot be reached fail: wave 2 never starts,
the other wave-1 environments end applied, the failures are named with their errors; after the fix a
rerun runs only the environments that miss something, and wave 2 follows. Within a wave, the first
failure stops new starts and leaves the rest untouched.
"""
from __future__ import annotations

import json

import psycopg
import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter

from dbops.cli import main
from dbops.orchestration.tags import TAG_COMMIT, TAG_ENVIRONMENT, TAG_ROLLOUT, TAG_WAVE
from tests.orchestration.fleet_support import FLEET_SCRIPTS, applied_versions, grant_back, limited_url, make_fleet, write_flyway_toml

pytestmark = pytest.mark.xdist_group("rollout")
VERSIONS = ["1", "2", "3"]


@pytest.fixture
def project(tmp_path, monkeypatch, scripts, dbops_home):
    """A project folder with the scripts, as the working directory, its own Dagster instance."""
    scripts(FLEET_SCRIPTS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for variable in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_LOCATIONS", "DBOPS_ENVIRONMENT", "DBOPS_FLYWAY_TOML", "DBOPS_ROLLOUT_PARALLEL"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def rollout(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["--json", "rollout", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def runs_by_environment(rollout_id: str) -> dict[str, list]:
    found: dict[str, list] = {}
    with DagsterInstance.get() as instance:
        for run in instance.get_runs(RunsFilter(job_name="migrate", tags={TAG_ROLLOUT: rollout_id})):
            found.setdefault(run.tags[TAG_ENVIRONMENT], []).append(run)
    return found


def test_fifty_environments_in_three_waves_stop_at_the_failed_wave_and_resume_after_the_fix(project, pg_server, capsys):
    waves = [0] * 5 + [1] * 20 + [2] * 25
    fleet = make_fleet(pg_server, waves)
    wave1 = [e for e in fleet if e.wave == 1]
    revoked, unreachable = wave1[-2], wave1[-1]  # started last in their wave: every other wave-1 environment starts
    urls = {revoked.name: limited_url(pg_server, revoked), unreachable.name: "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"}
    write_flyway_toml(project / "flyway.toml", fleet, urls)

    code, report, err = rollout(capsys, "--parallel", "4", "--commit", "c0ffee", "--author", "Ann")
    assert code == 1, err
    rows = {r["environment"]: r for r in report["environments"]}
    assert report["stopped_at_wave"] == 1 and not report["done"]
    assert {n for n, r in rows.items() if r["state"] == "failed"} == {revoked.name, unreachable.name}
    assert "permission denied" in rows[revoked.name]["error"]
    assert "127.0.0.1:1" in rows[unreachable.name]["error"] and "connect" in rows[unreachable.name]["error"]
    assert f"{revoked.name}: failed" in err and f"{unreachable.name}: failed" in err
    for env in fleet:
        expected = [] if env.wave == 2 or env in (revoked, unreachable) else VERSIONS
        assert applied_versions(env.url) == expected, env.name
    assert all(rows[e.name]["state"] == "untouched" for e in fleet if e.wave == 2)
    first = runs_by_environment("c0ffee")
    assert set(first) == {e.name for e in fleet if e.wave < 2}
    run = first[fleet[0].name][0]
    assert run.tags[TAG_WAVE] == "0" and run.tags[TAG_COMMIT] == "c0ffee" and run.tags["dagster/partition"] == fleet[0].name

    grant_back(revoked)
    write_flyway_toml(project / "flyway.toml", fleet)
    code, report, err = rollout(capsys, "--parallel", "4", "--commit", "c0ffee", "--author", "Ann")
    assert code == 0, err
    assert report["done"] and all(r["state"] == "succeeded" for r in report["environments"])
    assert all(applied_versions(e.url) == VERSIONS for e in fleet)
    again = runs_by_environment("c0ffee")
    started_again = {n for n, runs in again.items() if len(runs) > 1}
    assert started_again == {revoked.name, unreachable.name}, "only the failed environments run twice"
    assert len(again) == 50 and sum(len(r) for r in again.values()) == 52
    with DagsterInstance.get() as instance:
        for name in ("v1__customers", "v3__orders_view"):
            assert instance.get_materialized_partitions(AssetKey(["migrations", name])) == {e.name for e in fleet}


def test_the_first_failure_of_a_wave_stops_new_starts_and_leaves_the_rest_untouched(project, pg_server, capsys):
    fleet = make_fleet(pg_server, [0, 0, 0, 0, 0, 1])
    broken = fleet[2]
    write_flyway_toml(project / "flyway.toml", fleet, {broken.name: limited_url(pg_server, broken)})
    code, report, err = rollout(capsys, "--parallel", "1")
    assert code == 1, err
    states = {r["environment"]: r["state"] for r in report["environments"]}
    assert states == {fleet[0].name: "succeeded", fleet[1].name: "succeeded", broken.name: "failed",
                      fleet[3].name: "untouched", fleet[4].name: "untouched", fleet[5].name: "untouched"}
    assert [applied_versions(e.url) for e in fleet] == [VERSIONS, VERSIONS, [], [], [], []]
    assert report["rollout"].startswith("scripts-")


def test_a_selector_rolls_out_to_some_environments_and_a_plain_url_is_refused(project, pg_server, capsys):
    fleet = make_fleet(pg_server, [0, 1, 1])
    write_flyway_toml(project / "flyway.toml", fleet)
    code, report, err = rollout(capsys, "-e", "wave=1", "--parallel", "2")
    assert code == 0, err
    assert sorted(r["environment"] for r in report["environments"]) == [fleet[1].name, fleet[2].name]
    assert applied_versions(fleet[0].url) == [] and applied_versions(fleet[2].url) == VERSIONS
    assert main(["--url", fleet[0].url, "rollout"]) == 2
    assert "drop --url" in capsys.readouterr().err


def test_a_rollout_on_a_bad_instance_says_what_is_wrong_without_advising_migrate_direct(project, pg_server, capsys):
    fleet = make_fleet(pg_server, [0])
    write_flyway_toml(project / "flyway.toml", fleet)
    home = project / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage:\n  postgres:\n    nonsense: 1\n")
    assert main(["rollout"]) == 2
    err = capsys.readouterr().err
    assert f"error: {home / 'dagster.yaml'}: " in err and '"nonsense"' in err and "--direct" not in err, err
    (home / "dagster.yaml").write_text('storage:\n  postgres:\n    postgres_url: "postgresql://dagster:storage-secret@127.0.0.1:1/dagster"\n')
    assert main(["rollout"]) == 3
    err = capsys.readouterr().err
    assert "error: cannot use the Dagster storage of the instance in " in err and "Connection refused" in err, err
    assert "reachable" in err and "--direct" not in err and "storage-secret" not in err
    assert applied_versions(fleet[0].url) == []


def test_a_rollout_run_selects_only_what_its_environment_has_pending(project, pg_server, capsys):
    """Each planned materialization is a stored event: a run applying one new script to an environment that has
    the others selects that script only, not the whole job."""
    fleet = make_fleet(pg_server, [0, 1])
    write_flyway_toml(project / "flyway.toml", fleet)
    assert main(["-e", fleet[0].name, "migrate", "--direct"]) == 0
    capsys.readouterr()
    (project / "sql" / "V4__payments.sql").write_text("create table shop.payments (id int, order_id int);")
    code, _, err = rollout(capsys, "--commit", "feed01")
    assert code == 0, err
    runs = runs_by_environment("feed01")
    with DagsterInstance.get() as instance:
        for env, pending in ((fleet[0].name, {"v4__payments"}), (fleet[1].name, {"v1__customers", "v2__orders", "v3__orders_view", "v4__payments"})):
            (run,) = runs[env]
            planned = [e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION_PLANNED"]
            assert {e.dagster_event.asset_key.path[-1] for e in planned} == pending, env
    assert applied_versions(fleet[0].url) == applied_versions(fleet[1].url) == [*VERSIONS, "4"]


def test_scripts_applied_outside_dagster_are_recorded_late_once_per_application_in_their_environment(project, pg_server, capsys):
    from dagster import AssetRecordsFilter

    fleet = make_fleet(pg_server, [0])
    name = fleet[0].name
    write_flyway_toml(project / "flyway.toml", fleet)
    view = project / "sql" / "R__names.sql"
    view.write_text("create or replace view shop.names as select name from shop.customers;")
    assert main(["-e", name, "migrate", "--direct"]) == 0
    capsys.readouterr()
    assert rollout(capsys, "--commit", "feed01")[0] == 0  # records the four late
    view.write_text("create or replace view shop.names as select name, id from shop.customers;")
    assert main(["-e", name, "migrate", "--direct"]) == 0  # the view applied again, outside Dagster
    capsys.readouterr()
    (project / "sql" / "V4__payments.sql").write_text("create table shop.payments (id int, order_id int);")
    for commit in ("feed02", "feed03"):
        code, _, err = rollout(capsys, "--commit", commit)
        assert code == 0, err

    def count(asset: str) -> int:
        records = instance.fetch_materializations(AssetRecordsFilter(AssetKey(["migrations", asset]), asset_partitions=[name]), limit=10)
        return len(records.records)

    with DagsterInstance.get() as instance:
        counts = {a: count(a) for a in ("v1__customers", "v2__orders", "v3__orders_view", "v4__payments", "r__names")}
        (first,) = runs_by_environment("feed01")[name]
        assert first.tags["dbops/recorded_late"] == "true"
    assert counts == {"v1__customers": 1, "v2__orders": 1, "v3__orders_view": 1, "v4__payments": 1, "r__names": 2}


def test_a_rerun_after_an_environment_of_its_own_locations_gained_a_script_applies_it(project, pg_server, capsys):
    """A rollout's id digests every selected environment's scripts: a script new in one environment's own
    locations, or a changed placeholder value, makes the rerun a new rollout instead of "already succeeded"."""
    fleet = make_fleet(pg_server, [0, 1])
    write_flyway_toml(project / "flyway.toml", fleet)
    other = project / "other"
    other.mkdir()
    (other / "V1__other.sql").write_text("create table other_one (id int);")
    (other / "R__view.sql").write_text("create or replace view owner_view as select '${owner}'::text as owner;")
    with open(project / "flyway.toml", "a") as toml:
        toml.write(f'\n[environments.{fleet[1].name}.flyway]\nlocations = ["filesystem:other"]\n'
                   f'[environments.{fleet[1].name}.flyway.placeholders]\nowner = "first"\n')
    code, first, err = rollout(capsys)
    assert code == 0, err
    (other / "V2__other.sql").write_text("create table other_two (id int);")
    code, second, err = rollout(capsys)
    assert code == 0, err
    assert second["rollout"] != first["rollout"]
    assert applied_versions(fleet[1].url) == ["1", None, "2"]  # V1 and the view, then V2 by the rerun
    toml = (project / "flyway.toml").read_text().replace('owner = "first"', 'owner = "second"')
    (project / "flyway.toml").write_text(toml)
    code, third, err = rollout(capsys)
    assert code == 0, err
    assert third["rollout"] != second["rollout"]
    with psycopg.connect(fleet[1].url) as conn:
        assert conn.execute("select owner from owner_view").fetchone()[0] == "second"


def test_operator_errors_of_a_rollout_are_refused_before_any_run_naming_what_to_fix(project, pg_server, capsys, monkeypatch):
    fleet = make_fleet(pg_server, [0, 5])
    write_flyway_toml(project / "flyway.toml", fleet)
    with open(project / "flyway.toml", "a") as toml:
        toml.write(f'\n[environments.{fleet[1].name}.flyway]\nlocations = ["filesystem:typo"]\n')
    assert main(["rollout"]) == 2
    err = capsys.readouterr().err
    assert f"environment {fleet[1].name}" in err and "flyway.toml" in err and "typo" in err, err
    assert "Traceback" not in err
    write_flyway_toml(project / "flyway.toml", fleet)
    monkeypatch.setenv("DBOPS_PASSWORD", "s3cret-shared")
    assert main(["rollout"]) == 2
    err = capsys.readouterr().err
    assert "unset DBOPS_PASSWORD" in err and "s3cret-shared" not in err, err
    assert not (project / "dagster_home").exists()  # no Dagster instance was even opened, so no run started
    assert applied_versions(fleet[0].url) == []
