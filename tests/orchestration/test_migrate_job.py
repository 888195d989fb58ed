"""The migrate job: applies what is pending, one materialization per applied script, in order."""
from __future__ import annotations

from dagster import DagsterEventType

from tests.orchestration.support import definitions, key, materializations, query

SCRIPTS = {
    "V1__create_users.sql": "create table users (id int, name varchar(50));",
    "V2__seed_users.sql": "insert into users values (1, 'ann'), (2, 'bob');\ninsert into users values (3, 'cy');",
    "V3__add_email.sql": "alter table users add column email varchar(200);",
}
TAGS = {"dbops/source": "cli", "dbops/commit": "abc123", "dbops/author": "Ann <ann@example.com>", "dbops/message": "Add users"}


def run(defs, instance, selection=None, tags=None):
    return defs.resolve_job_def("migrate").execute_in_process(
        instance=instance, tags=tags or {}, asset_selection=selection, raise_on_error=False
    )


def history(url: str) -> list[tuple]:
    return query(url, 'select "version", "script", "success" from flyway_schema_history order by installed_rank')


def test_applies_pending_scripts_with_metadata_and_a_second_run_adds_nothing(instance, scripts, pg_url):
    defs = definitions(scripts(SCRIPTS), pg_url)
    result = run(defs, instance, tags=TAGS)
    assert result.success
    found = materializations(result.all_events)
    assert list(found) == [key("v1__create_users"), key("v2__seed_users"), key("v3__add_email")]
    seed = found[key("v2__seed_users")]
    assert seed["statements"] == 2 and seed["rows_affected"] == 3
    assert seed["commit"] == "abc123" and seed["author"] == "Ann <ann@example.com>" and seed["source"] == "cli"
    assert seed["mode"] == "transaction" and seed["version"] == "2" and seed["execution_time_ms"] >= 0
    assert [row[1] for row in history(pg_url)] == ["V1__create_users.sql", "V2__seed_users.sql", "V3__add_email.sql"]
    audit = query(pg_url, "select run_id, source, commit_id, commit_message, status from dbops_audit order by started_at")
    assert audit == [(result.run_id, "cli", "abc123", "Add users", "success")] * 3
    assert query(pg_url, "select count(*) from users") == [(3,)]

    again = run(defs, instance, tags=TAGS)
    assert again.success
    assert materializations(again.all_events) == {}
    latest = instance.get_latest_materialization_event(key("v3__add_email"))
    assert latest.run_id == result.run_id
    assert len(history(pg_url)) == 3


def test_a_run_without_a_source_tag_is_recorded_as_started_from_the_ui(instance, scripts, pg_url):
    result = run(definitions(scripts({"V1__a.sql": "create table a (id int);"}), pg_url), instance)
    assert materializations(result.all_events)[key("v1__a")]["source"] == "ui"
    assert query(pg_url, "select source, commit_id from dbops_audit") == [("ui", "")]


def test_selecting_a_script_whose_pending_predecessor_is_not_selected_fails_naming_it(instance, scripts, pg_url):
    defs = definitions(scripts(SCRIPTS), pg_url)
    result = run(defs, instance, selection=[key("v2__seed_users")])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description
    assert "V2__seed_users.sql cannot be applied before" in message and "V1__create_users.sql" in message
    assert failure.step_failure_data.user_failure_data.metadata["exit_code"].value == 2
    assert history(pg_url) == []

    both = run(defs, instance, selection=[key("v1__create_users"), key("v2__seed_users")])
    assert both.success
    assert list(materializations(both.all_events)) == [key("v1__create_users"), key("v2__seed_users")]
    assert [row[0] for row in history(pg_url)] == ["1", "2"]


def test_scripts_the_code_location_has_not_loaded_are_applied_under_their_asset_key(instance, scripts, pg_url):
    folder = scripts(SCRIPTS)
    defs = definitions(folder, pg_url)
    scripts({"V4__Add-Phone.sql": "alter table users add column phone varchar(20);"})

    subset = run(defs, instance, selection=[key("v1__create_users")])
    assert list(materializations(subset.all_events)) == [key("v1__create_users")]

    result = run(defs, instance, tags=TAGS)
    assert result.success
    found = materializations(result.all_events)
    assert list(found) == [key("v2__seed_users"), key("v3__add_email"), key("v4__add_phone")]
    assert found[key("v4__add_phone")]["commit"] == "abc123"
    assert instance.get_latest_materialization_event(key("v4__add_phone")).run_id == result.run_id
    logs = [e.message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    assert any("V4__Add-Phone.sql is not an asset of the loaded code location" in m and "migrations/v4__add_phone" in m for m in logs)
    assert history(pg_url)[-1] == ("4", "V4__Add-Phone.sql", True)


def test_a_failing_script_fails_the_run_with_the_engine_message_and_exit_code(instance, scripts, pg_url):
    defs = definitions(scripts({"V1__ok.sql": "create table ok (id int);", "V2__bad.sql": "create table ok (id int);\nselect nope;"}), pg_url)
    result = run(defs, instance, tags=TAGS)
    assert not result.success
    assert list(materializations(result.all_events)) == [key("v1__ok")]
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE).step_failure_data.user_failure_data
    assert "V2__bad.sql:1" in failure.description and "already exists" in failure.description
    assert failure.metadata["exit_code"].value == 1
    assert query(pg_url, "select script, status from dbops_audit order by started_at") == [("V1__ok.sql", "success"), ("V2__bad.sql", "failed")]


def test_each_applied_script_is_one_runtime_materialization_event(instance, scripts, pg_url):
    result = run(definitions(scripts(SCRIPTS), pg_url), instance, tags=TAGS)
    assert result.success
    assert list(materializations(result.all_events)) == [key("v1__create_users"), key("v2__seed_users"), key("v3__add_email")]
    assert not [e for e in result.all_events if e.event_type in (DagsterEventType.STEP_OUTPUT, DagsterEventType.HANDLED_OUTPUT)]
    stored = instance.fetch_materializations(key("v2__seed_users"), limit=10).records
    assert len(stored) == 1 and stored[0].run_id == result.run_id
    assert stored[0].asset_materialization.metadata["rows_affected"].value == 3


def test_a_run_for_a_commit_applies_exactly_that_commit_s_scripts(instance, tmp_path, pg_url):
    """Scripts come from the commit named by the run tags (not the work tree), new ones under their asset keys."""
    from tests.gitrepo import GitRepo

    repo = GitRepo(tmp_path / "warehouse")
    repo.commit("Create users", {"sql/V1__create_users.sql": SCRIPTS["V1__create_users.sql"]})
    defs = definitions(repo.path / "sql", pg_url)
    commit = repo.commit("Seed users", {"sql/V2__seed_users.sql": SCRIPTS["V2__seed_users.sql"]}, author="Bob <bob@example.com>")
    repo.write({"sql/V3__add_email.sql": SCRIPTS["V3__add_email.sql"]})  # not committed: never applied
    tags = {"dbops/source": "sensor", "dbops/repository": f"git:{repo.path}", "dbops/commit": commit, "dbops/author": "Bob", "dbops/message": "Seed users"}
    result = run(defs, instance, tags=tags)
    assert result.success
    found = materializations(result.all_events)
    assert list(found) == [key("v1__create_users"), key("v2__seed_users")]
    assert found[key("v2__seed_users")]["commit"] == commit and found[key("v2__seed_users")]["source"] == "sensor"
    assert [row[1] for row in history(pg_url)] == ["V1__create_users.sql", "V2__seed_users.sql"]
    assert query(pg_url, "select distinct commit_id, source from dbops_audit") == [(commit, "sensor")]
