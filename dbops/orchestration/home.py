"""The local Dagster instance: DAGSTER_HOME, by default `.dbops/dagster_home`, created on first use."""
from __future__ import annotations

import os
from pathlib import Path

from dbops.targets.embedded import dbops_home

DAGSTER_YAML = """\
# The local Dagster instance of dbops (created by `dbops migrate` / `dbops ui`).
# No telemetry and no welcome dialog: the UI works offline. Storage: Dagster's SQLite layout in this
# folder, with an event log that keeps its connections open (see dbops/orchestration/storage.py).
telemetry:
  enabled: false
nux:
  enabled: false
storage:
  custom:
    module: dbops.orchestration.storage
    class: DbopsSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
"""


def dagster_home() -> Path:
    """DAGSTER_HOME when set, else `<DBOPS_HOME>/dagster_home`; created with a dagster.yaml when new."""
    home = Path(os.environ.get("DAGSTER_HOME") or dbops_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and not (home / "dagster.yml").exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
