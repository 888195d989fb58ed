"""The local Dagster instance: DAGSTER_HOME, by default `.dbops/dagster_home`, created on first use.

Its storage is dagster-postgres on the embedded PostgreSQL server (database `dagster`), the same
storage code that deployments run (infra/dagster_home, infra/dagster_ecs), safe for concurrent runs.
"""
from __future__ import annotations

import os
from pathlib import Path

from dbops.paths import dbops_home
from dbops.targets.embedded import DAGSTER_DATABASE, EmbeddedDatabase

HEADER = "# The local Dagster instance of dbops (created by `dbops migrate` / `dbops ui`)."
DAGSTER_YAML = HEADER + """
# No telemetry and no welcome dialog: the UI works offline. Storage: dagster-postgres on the
# embedded PostgreSQL server (`dbops local start|stop|status`), database "{database}".
telemetry:
  enabled: false
nux:
  enabled: false
storage:
  postgres:
    postgres_url: "{url}"
"""


def dagster_home() -> Path:
    """DAGSTER_HOME when set, else `<DBOPS_HOME>/dagster_home`, exported as DAGSTER_HOME.

    A folder without a dagster.yaml, or with one dbops wrote, gets dbops's: the embedded server is
    started and its `dagster` database is the storage. A dagster.yaml of your own is left as it is.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or dbops_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not (home / "dagster.yml").exists() and (not config.exists() or config.read_text().startswith(HEADER)):
        wanted = DAGSTER_YAML.format(database=DAGSTER_DATABASE, url=embedded_storage_url())
        if not config.exists() or config.read_text() != wanted:
            config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def embedded_storage_url() -> str:
    """The URL of the `dagster` database on the embedded server, started (and the database created) if needed."""
    server = EmbeddedDatabase.default()
    socket_dir = server.start()
    server.ensure_database(socket_dir, DAGSTER_DATABASE)
    return server.url(socket_dir, DAGSTER_DATABASE)
