"""The deployed topology, run for real on this machine.

What infra/ deploys, with the files it deploys: dagster-postgres storage (infra/dagster_home/dagster.yaml
and infra/dagster_ecs/dagster.yaml as they are, `sslmode: require` answered by a TLS pgbouncer in front
of the test server); CodeBuild's build phase (buildspec.yml's commands, verbatim, in a git clone, with the
variables the CodeBuild project sets); the code location as its gRPC server; the daemon with the queued
run coordinator ticking git_sensor (the local stand-in for codecommit_sensor) and the validate schedule;
runs launched by the default run launcher (the stand-in for EcsRunLauncher, whose config
tests/infra/test_infra_dagster.py checks against dagster-aws's schema); the webserver over the same
storage, asked through GraphQL.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.gitrepo import GitRepo
from tests.pg import PgServer
from tests.services import Service, free_port, graphql, wait_for
from tests.test_buildspec import SPEC, project_variables
from tests.tls import tls_bouncer_for

pytestmark = pytest.mark.xdist_group("topology")

ROOT = Path(__file__).resolve().parents[2]
ECS_HOME = ROOT / "infra" / "dagster_ecs"
BIN = Path(sys.executable).parent
STORAGE_PASSWORD = "storage-Pa55word-never-printed"
WAREHOUSE_PASSWORD = "warehouse-Pa55word-never-printed"
SCRIPTS = {
    "sql/V1__customers.sql": "create table customers (id int, name varchar(50));\n",
    "sql/V2__orders.sql": "create table orders (id int, customer_id int);\n",
}
RUNS = """
{ runsOrError { ... on Runs { results { runId jobName status tags { key value } assetSelection { path } } } } }
"""
LOADED = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
MATERIALIZATIONS = """
query Materializations($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) { ... on Asset { assetMaterializations { runId } } }
}
"""
STALENESS = "{ assetNodes { assetKey { path } staleStatus } }"


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def ecs_instance_for_this_machine(home: Path) -> None:
    """infra/dagster_ecs/dagster.yaml with only the two AWS services swapped for their local stand-ins."""
    config = yaml.safe_load((ECS_HOME / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "EcsRunLauncher" and config["compute_logs"]["class"] == "S3ComputeLogManager"
    config["run_launcher"] = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    config["compute_logs"] = {
        "module": "dagster._core.storage.local_compute_log_manager",
        "class": "LocalComputeLogManager",
        "config": {"base_dir": str(home / "compute_logs")},
    }
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def workspace_for_this_machine(folder: Path, port: int) -> Path:
    """infra/dagster_ecs/workspace.yaml with the code location's port (4000 in ECS) set to a free one."""
    text = (ECS_HOME / "workspace.yaml").read_text()
    assert text.count("port: 4000") == 1
    path = folder / "workspace.yaml"
    path.write_text(text.replace("port: 4000", f"port: {port}"))
    return path


def test_dagster_postgres_gets_the_driver_it_is_written_for() -> None:
    """dagster-postgres binds NOTIFY's payload as a parameter, which psycopg 3's server-side binding rejects;
    pyproject pins SQLAlchemy 2.0, whose postgresql:// driver is psycopg2 (2.1 made it psycopg 3)."""
    import sqlalchemy

    assert sqlalchemy.create_engine("postgresql://u@localhost/db").dialect.driver == "psycopg2"


@pytest.fixture(scope="module")
def topology(pg_server: PgServer, bouncer, tmp_path_factory: pytest.TempPathFactory):
    """The storage behind TLS, the warehouse behind the Redshift rig, a git repository, folders."""
    root = tmp_path_factory.mktemp("topology")
    storage_db = pg_server.create_database("dagster")
    warehouse_db = pg_server.create_database("warehouse")
    with tls_bouncer_for(pg_server) as (tls, _ca):
        repo = GitRepo(root / "source")
        repo.write({"infra/dagster_home/dagster.yaml": (ROOT / "infra" / "dagster_home" / "dagster.yaml").read_text(),
                    "buildspec.yml": (ROOT / "buildspec.yml").read_text()})
        repo.git("add", "--all")
        first = repo.commit("Add customers and orders\n\nFor the sales dashboard.", SCRIPTS,
                            author="Grace Hopper <grace@example.com>")
        storage = {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(tls.port),
            "DAGSTER_PG_DB": storage_db,
            "DAGSTER_PG_USERNAME": "postgres",
            "DAGSTER_PG_PASSWORD": STORAGE_PASSWORD,
        }
        yield {
            "root": root, "repo": repo, "first": first, "storage": storage,
            "storage_url": pg_server.url(storage_db), "warehouse_url": pg_server.url(warehouse_db),
            "warehouse": bouncer.url(warehouse_db),
        }


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBOPS_", "DAGSTER_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def codebuild_build(topology: dict, shim: Path) -> tuple[int, str]:
    """buildspec.yml's build phase in a clone, as CodeBuild runs it: one bash session, the project's variables."""
    clone = topology["root"] / "clone"
    if not clone.exists():
        topology["repo"].git("clone", "--quiet", str(topology["repo"].path), str(clone))
    declared = set(project_variables())
    given = {
        "DBOPS_URL": topology["warehouse"],
        "DBOPS_PASSWORD": WAREHOUSE_PASSWORD,
        "DAGSTER_HOME": str(topology["root"] / "codebuild" / "dagster_home"),
        **topology["storage"],
    }
    assert set(given) == declared, "the CodeBuild project's variables changed: give the test each of them"
    env = {**base_env(), **given, "PATH": f"{shim}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
           "CODEBUILD_RESOLVED_SOURCE_VERSION": topology["repo"].head(), "HOME": str(topology["root"])}
    script = "\n".join(["set -e", *SPEC["phases"]["build"]["commands"]])
    done = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def uv_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`uv run X` runs X from this environment (the install phase, `uv sync --frozen`, made it)."""
    folder = tmp_path_factory.mktemp("uvshim")
    shim = folder / "uv"
    shim.write_text('#!/bin/bash\n[ "$1" = run ] || { echo "uv shim: only run" >&2; exit 2; }\nshift\nexec "$@"\n')
    shim.chmod(0o755)
    return folder


def test_codebuild_then_daemon_sensor_schedule_and_webserver_on_dagster_postgres(topology, uv_shim) -> None:
    # 1. CodeBuild: buildspec.yml's build phase against the shared dagster-postgres storage.
    code, output = codebuild_build(topology, uv_shim)
    assert code == 0, output[-4000:]
    assert STORAGE_PASSWORD not in output and WAREHOUSE_PASSWORD not in output
    history = rows(topology["warehouse_url"], "select version, script, success from flyway_schema_history order by installed_rank")
    assert history == [("1", "V1__customers.sql", True), ("2", "V2__orders.sql", True)]
    audit = rows(topology["warehouse_url"], "select script, status, commit_id, commit_author, source from dbops_audit order by script")
    first = topology["first"]
    assert audit == [("V1__customers.sql", "success", first, "Grace Hopper <grace@example.com>", "cli"),
                     ("V2__orders.sql", "success", first, "Grace Hopper <grace@example.com>", "cli")]
    (build_run,) = rows(topology["storage_url"], "select run_id, status from runs")
    assert build_run[1] == "SUCCESS"

    # 2. The ECS services on the same storage: code location (gRPC), daemon, webserver.
    root = topology["root"]
    home = root / "ecs" / "dagster_home"
    ecs_instance_for_this_machine(home)
    code_port, web_port = free_port(), free_port()
    workspace = workspace_for_this_machine(root / "ecs", code_port)
    app = root / "app"  # the image's /app: sql/ beside the code
    shutil.copytree(topology["repo"].path / "sql", app / "sql")
    second = topology["repo"].commit("Add payments", {"sql/V3__payments.sql": "create table payments (id int, amount int);\n"},
                                     author="Alan Turing <alan@example.com>")
    env = {
        **base_env(), **topology["storage"],
        "DAGSTER_HOME": str(home),
        "DAGSTER_CODE_LOCATION_HOST": "127.0.0.1",
        "DAGSTER_RUN_TASK_DEFINITION": "dbops-dagster-run",
        "DAGSTER_COMPUTE_LOG_BUCKET": "unused-by-the-local-compute-log-manager",
        "DBOPS_URL": topology["warehouse"],
        "DBOPS_PASSWORD": WAREHOUSE_PASSWORD,
        "DBOPS_GIT_REPOSITORY": str(topology["repo"].path),
        "DBOPS_VALIDATE_CRON": "* * * * *",
    }
    logs = root / "logs"
    logs.mkdir()
    services = [Service.start("code-location", [str(BIN / "dagster"), "api", "grpc", "--host", "127.0.0.1", "--port", str(code_port),
                                                "--module-name", "dbops.definitions", "--location-name", "dbops"], app, env, logs)]
    try:
        services.append(Service.start("daemon", [str(BIN / "dagster-daemon"), "run", "--workspace", str(workspace)], app, env, logs))
        services.append(Service.start("webserver", [str(BIN / "dagster-webserver"), "--host", "127.0.0.1", "--port", str(web_port),
                                                    "--workspace", str(workspace)], app, env, logs))

        def loaded() -> bool:
            entries = graphql(web_port, LOADED)["workspaceOrError"]["locationEntries"]
            return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

        wait_for("the webserver loads the code location", loaded, services, timeout=120)

        def finished(job: str, source: str) -> list[dict]:
            runs = graphql(web_port, RUNS)["runsOrError"]["results"]
            return [r for r in runs if r["jobName"] == job and tags_of(r).get("dbops/source") == source
                    and r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]

        (sensor_run,) = wait_for("git_sensor's run for the new commit finishes", lambda: finished("migrate", "sensor"), services, 150)
        assert sensor_run["status"] == "SUCCESS", "\n".join(s.tail() for s in services)
        assert tags_of(sensor_run)["dbops/commit"] == second
        # It planned only V2 (the last script the instance had recorded, of those the code location loaded), not every
        # script, and applied what the history said was pending: V3.
        assert [a["path"] for a in sensor_run["assetSelection"]] == [["migrations", "v2__orders"]]
        assert tags_of(sensor_run)["dbops/selection"] == "pending"
        assert rows(topology["warehouse_url"], "select version from flyway_schema_history order by installed_rank")[-1] == ("3",)
        (audit_v3,) = rows(topology["warehouse_url"], "select commit_id, commit_author, source, run_id from dbops_audit where version = '3'")
        assert audit_v3 == (second, "Alan Turing <alan@example.com>", "sensor", sensor_run["runId"])

        scheduled = wait_for("the validate schedule's run finishes", lambda: finished("validate", "schedule"), services, 150)
        assert scheduled[0]["status"] == "SUCCESS", "\n".join(s.tail() for s in services)

        # 3. The webserver reads all of it from the shared storage.
        runs = graphql(web_port, RUNS)["runsOrError"]["results"]
        by_source = {tags_of(r)["dbops/source"]: r for r in runs if r["jobName"] == "migrate"}
        assert by_source["cli"]["runId"] == build_run[0] and by_source["cli"]["status"] == "SUCCESS"
        assert tags_of(by_source["cli"])["dbops/commit"] == first
        def materialized_in(name: str) -> list[str]:
            asset = graphql(web_port, MATERIALIZATIONS, {"path": ["migrations", name]})["assetOrError"]
            return [m["runId"] for m in asset["assetMaterializations"]]

        assert materialized_in("v1__customers") == materialized_in("v2__orders") == [build_run[0]]
        assert materialized_in("v3__payments") == [sensor_run["runId"]]  # new to the loaded code location
        stale = {"/".join(n["assetKey"]["path"]): n["staleStatus"] for n in graphql(web_port, STALENESS)["assetNodes"]}
        assert stale["migrations/v1__customers"] == stale["migrations/v2__orders"] == "FRESH"
    finally:
        for service in reversed(services):
            service.stop()
    everything = "".join(s.log.read_text(errors="replace") for s in services)
    assert STORAGE_PASSWORD not in everything and WAREHOUSE_PASSWORD not in everything
    assert not re.search(r"Traceback \(most recent call last\)", everything), everything[-6000:]
