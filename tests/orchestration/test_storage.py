"""The local instance's storage: Dagster's SQLite layout with an event log that keeps its connections."""
from __future__ import annotations

import threading

from dagster import AssetKey, AssetMaterialization, DagsterInstance, Output, job, op

from dbops.orchestration.home import dagster_home
from dbops.orchestration.storage import OPEN_RUN_FILES, PooledSqliteEventLogStorage


@op
def record(context):
    for n in range(3):
        yield AssetMaterialization(asset_key=AssetKey(["t", f"a{n}"]), metadata={"n": n})
    yield Output(None)


@job
def recording():
    record()


def test_runs_and_events_are_stored_and_read_back_in_dagster_s_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = dagster_home()
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_ids = [recording.execute_in_process(instance=instance).run_id for _ in range(OPEN_RUN_FILES + 2)]
    assert (home / "history" / "runs" / f"{run_ids[0]}.db").is_file()
    with DagsterInstance.get() as again:
        assert {r.run_id for r in again.get_runs()} == set(run_ids)
        latest = again.get_latest_materialization_event(AssetKey(["t", "a2"]))
        assert latest.run_id == run_ids[-1]
        assert len(again.all_logs(run_ids[0])) > 5


def test_watchers_hear_about_new_events_by_polling(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    dagster_home()
    with DagsterInstance.get() as instance:
        first = recording.execute_in_process(instance=instance).run_id
        heard = threading.Event()
        seen: list[str] = []

        def callback(event, cursor):
            seen.append(event.run_id)
            heard.set()

        instance.event_log_storage.watch(first, None, callback)
        assert heard.wait(10)
        instance.event_log_storage.end_watch(first, callback)
    assert seen and set(seen) == {first}
