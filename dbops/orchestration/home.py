"""The local Dagster instance: DAGSTER_HOME, by default `.dbops/dagster_home`, created on first use.

Its storage is dagster-postgres on the embedded PostgreSQL server (database `dagster`), the same
storage code that deployments run (infra/dagster_home, infra/dagster_ecs), safe for concurrent runs.
"""
from __future__ import annotations

import os
from pathlib import Path

from dbops.errors import ConfigError
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
    A folder that cannot be one (a file, unwritable) or a dagster.yaml that cannot be read is ConfigError.
    """
    given = os.environ.get("DAGSTER_HOME")
    home = Path(given or dbops_home() / "dagster_home").absolute()
    if given:
        setting = f"DAGSTER_HOME={given}" + ("" if str(home) == given else f" ({home})")
        fix = "set DAGSTER_HOME to a folder you can write (or unset it for the default, .dbops/dagster_home)"
    else:
        setting = f"the Dagster instance folder {home} (DBOPS_HOME/dagster_home)"
        fix = "set DBOPS_HOME to a folder you can write, or DAGSTER_HOME to the instance's folder"
    try:
        home = home.resolve()
        home.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{setting} is a file, not a folder; {fix}") from None
    except NotADirectoryError:
        raise ConfigError(f"{setting} is under a file, so it cannot be a folder; {fix}") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop
        raise ConfigError(f"{setting}: cannot create the folder: {getattr(exc, 'strerror', None) or exc}; {fix}") from None
    config = home / "dagster.yaml"
    text = _read_config(config)
    if not (home / "dagster.yml").exists() and (text is None or text.startswith(HEADER)):
        wanted = DAGSTER_YAML.format(database=DAGSTER_DATABASE, url=embedded_storage_url())
        if text != wanted:
            try:
                config.write_text(wanted, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"{config}: cannot write the Dagster instance configuration: {exc.strerror or exc}; {fix}") from None
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _read_config(config: Path) -> str | None:
    """The text of the instance's dagster.yaml, None when there is none; one that cannot be read is ConfigError."""
    try:
        return config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{config}: a folder, not the Dagster instance configuration; remove it (dbops then writes its "
                          "own) or put your dagster.yaml there") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{config}: cannot read the Dagster instance configuration: {exc.strerror or exc}; "
                          "make it readable, or set DAGSTER_HOME to another folder") from None


def embedded_storage_url() -> str:
    """The URL of the `dagster` database on the embedded server, started (and the database created) if needed."""
    server = EmbeddedDatabase.default()
    socket_dir = server.start()
    server.ensure_database(socket_dir, DAGSTER_DATABASE)
    return server.url(socket_dir, DAGSTER_DATABASE)
