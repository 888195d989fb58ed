"""The Dagster UI after `dbops migrate`: the asset graph shows the migration chain and the tables, a
migration's page lists the run's materialization and a table's page the columns its observation recorded.
dagster-webserver on 127.0.0.1, headless Chromium (Debian's)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from dbops.cli import main
from tests.services import free_port, graphql

pytestmark = pytest.mark.browser

SCRIPTS = {
    "V1__customers.sql": "create schema shop;\ncreate table shop.customers (id int, name varchar(50));",
    "V2__orders.sql": "create table shop.orders (id int, customer_id int);",
    "V3__orders_view.sql": "create view shop.v_orders as select o.id, c.name from shop.orders o join shop.customers c on c.id = o.customer_id;",
}
WORKSPACE = "load_from:\n  - python_module:\n      module_name: dbops.definitions\n      location_name: dbops\n      working_directory: .\n"
UI_STATE = """
query UiState($runId: ID!) {
  workspaceOrError { ... on Workspace { locationEntries { loadStatus } } }
  assetNodes { assetKey { path } isMaterializable dependencyKeys { path } assetMaterializations(limit: 1) { runId } }
  runOrError(runId: $runId) { ... on Run { status jobName tags { key value } } }
}
"""
TABLE_OBSERVATION = """
query Table($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) { ... on Asset { assetObservations(limit: 1) { runId metadataEntries {
    label ... on TextMetadataEntry { text } ... on TableSchemaMetadataEntry { schema { columns { name type } } }
  } } } }
}
"""


@pytest.fixture
def migrated(tmp_path, monkeypatch, scripts, pg_url, capsys, dbops_home):
    """A project whose scripts `dbops migrate` applied through Dagster; returns (folder, run id, environment)."""
    scripts(SCRIPTS)
    (tmp_path / "workspace.yaml").write_text(WORKSPACE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("DBOPS_LOCATIONS", raising=False)
    assert main(["--url", pg_url, "migrate", "--commit", "abc123", "--message", "Add the shop"]) == 0
    run_id = capsys.readouterr().out.split("Dagster run: ")[1].split()[0]
    env = {**os.environ, "DBOPS_URL": pg_url, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    return tmp_path, run_id, env


@pytest.fixture
def webserver(migrated):
    folder, run_id, env = migrated
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=(folder / "webserver.log").open("w"), start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                entries = graphql(port, UI_STATE, {"runId": run_id})["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (folder / "webserver.log").read_text()[-3000:]
            time.sleep(0.5)
        yield port, run_id
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_the_ui_shows_the_chain_the_tables_and_the_run(webserver, tmp_path):
    port, run_id = webserver
    state = graphql(port, UI_STATE, {"runId": run_id})
    nodes = {"/".join(n["assetKey"]["path"]): n for n in state["assetNodes"]}
    chain = ["migrations/v1__customers", "migrations/v2__orders", "migrations/v3__orders_view"]
    for before, after in zip(chain, chain[1:]):
        assert [d["path"] for d in nodes[after]["dependencyKeys"]] == [before.split("/")]
    assert all(nodes[k]["assetMaterializations"][0]["runId"] == run_id for k in chain)
    view = nodes["warehouse/shop/v_orders"]
    assert not view["isMaterializable"] and [d["path"] for d in view["dependencyKeys"]] == [chain[2].split("/")]
    run = state["runOrError"]
    assert run["status"] == "SUCCESS" and run["jobName"] == "migrate"
    assert {"key": "dbops/commit", "value": "abc123"} in run["tags"]
    (observed,) = graphql(port, TABLE_OBSERVATION, {"path": ["warehouse", "shop", "customers"]})["assetOrError"]["assetObservations"]
    entries = {e["label"]: e for e in observed["metadataEntries"]}
    assert observed["runId"] == run_id and entries["object"]["text"] == "table"
    assert entries["dagster/column_schema"]["schema"]["columns"] == [
        {"name": "id", "type": "integer"}, {"name": "name", "type": "character varying(50)"}]

    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (apt-get install chromium)"
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000}, reduced_motion="reduce")
            page.goto(f"{base}/asset-groups?expanded=" + quote("global@global:migrations,global@global:warehouse"))
            for name in ("v1__customers", "v2__orders", "v3__orders_view", "customers", "orders", "v_orders"):
                expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=20_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "asset-graph.png"), full_page=True)

            page.goto(f"{base}/assets/migrations/v2__orders?view=events")
            expect(page.get_by_text(f"Materialized in run {run_id[:8]}").first).to_be_visible(timeout=20_000)
            expect(page.get_by_text("rows_affected").first).to_be_visible(timeout=20_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "migration-asset.png"), full_page=True)

            page.goto(f"{base}/assets/warehouse/shop/customers?view=events")
            expect(page.get_by_text("character varying(50)").first).to_be_visible(timeout=20_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "table-asset.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "asset-graph.png").stat().st_size > 10_000
    assert (tmp_path / "migration-asset.png").stat().st_size > 10_000
    assert (tmp_path / "table-asset.png").stat().st_size > 10_000
